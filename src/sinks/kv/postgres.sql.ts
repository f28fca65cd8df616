/**
 * The PostgreSQL backend's schema: one row per object, the map (or plain value) as one jsonb
 * document — `{ "views": 3, "tags": ["a"], "seen": true, "addr": { "city": "Paris" } }`, so it
 * reads and queries as plain JSON — and one function that applies a whole batch in one statement.
 * The function takes row locks in (type, bucket, key) order, so two batches never deadlock; a
 * write that does not fit what is stored is reported in-band and changes nothing.
 * `table` has been checked to be a plain (optionally schema-qualified) identifier.
 */
export function schemaSql(table: string): string {
  const fn = `${table}_apply`;
  return `
CREATE TABLE IF NOT EXISTS ${table} (
  bucket_type text NOT NULL,
  bucket text NOT NULL,
  key text NOT NULL,
  kind text CHECK (kind IN ('map', 'value')),
  doc jsonb NOT NULL DEFAULT '{}'::jsonb,
  ts bigint NOT NULL DEFAULT 0,
  last_id text NOT NULL DEFAULT '',
  version bigint NOT NULL DEFAULT 0,
  applied text[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (bucket_type, bucket, key)
);
CREATE OR REPLACE FUNCTION ${fn}(items jsonb, max_ids int) RETURNS text[] LANGUAGE plpgsql AS $fn$
DECLARE
  it jsonb; op jsonb; ord bigint;
  res text[] := array_fill(''::text, ARRAY[jsonb_array_length(items)]);
  row_ record; d jsonb; path text[]; sub jsonb; cur jsonb; want text; err text; n numeric; i int;
  ids text[];
BEGIN
  FOR it, ord IN
    SELECT e.value, e.ordinality FROM jsonb_array_elements(items) WITH ORDINALITY AS e
    ORDER BY e.value->>'t', e.value->>'b', e.value->>'key', e.ordinality
  LOOP
    SELECT * INTO row_ FROM ${table} WHERE bucket_type = it->>'t' AND bucket = it->>'b' AND key = it->>'key' FOR UPDATE;
    IF NOT FOUND THEN
      INSERT INTO ${table} (bucket_type, bucket, key) VALUES (it->>'t', it->>'b', it->>'key') ON CONFLICT DO NOTHING;
      SELECT * INTO row_ FROM ${table} WHERE bucket_type = it->>'t' AND bucket = it->>'b' AND key = it->>'key' FOR UPDATE;
    END IF;
    err := NULL;
    ids := ARRAY[it->>'id'];
    IF it->>'k' = 'c' THEN
      IF row_.kind = 'map' THEN err := 'wrong-type:the key holds a map, not a plain value';
      ELSIF row_.version <> (it->>'ver')::bigint THEN res[ord] := 'conflict'; CONTINUE;
      ELSE
        SELECT array_agg(x) INTO ids FROM jsonb_array_elements_text(it->'ids') AS x;
        UPDATE ${table} SET kind = 'value', doc = it->'v', ts = (it->>'ts')::bigint, last_id = it->>'id', version = version + 1
          WHERE bucket_type = it->>'t' AND bucket = it->>'b' AND key = it->>'key';
        res[ord] := 'ok';
      END IF;
    ELSIF (it->>'id') = ANY(row_.applied) THEN
      res[ord] := 'dup'; CONTINUE;
    ELSIF it->>'k' = 'p' THEN
      IF row_.kind = 'map' THEN err := 'wrong-type:the key holds a map, not a plain value';
      ELSIF row_.kind = 'value' AND ((it->>'ts')::bigint, it->>'id') <= (row_.ts, row_.last_id) THEN
        res[ord] := 'stale';
      ELSE
        UPDATE ${table} SET kind = 'value', doc = it->'v', ts = (it->>'ts')::bigint, last_id = it->>'id', version = version + 1
          WHERE bucket_type = it->>'t' AND bucket = it->>'b' AND key = it->>'key';
        res[ord] := 'ok';
      END IF;
    ELSE
      IF row_.kind = 'value' THEN err := 'wrong-type:the key holds a plain value, not a map'; END IF;
      d := row_.doc;
      IF err IS NULL THEN
        <<ops>>
        FOR op IN SELECT value FROM jsonb_array_elements(it->'ops') LOOP
          path := string_to_array(op->>'p', '.');
          FOR i IN 1 .. array_length(path, 1) - 1 LOOP
            sub := d #> path[1:i];
            IF sub IS NULL THEN d := jsonb_set(d, path[1:i], '{}'::jsonb);
            ELSIF jsonb_typeof(sub) <> 'object' THEN
              err := 'wrong-type:' || array_to_string(path[1:i], '.') || ' is a ' || conveyor_kv_jtype(jsonb_typeof(sub)) || ', not a map';
              EXIT ops;
            END IF;
          END LOOP;
          cur := d #> path;
          want := CASE op->>'t' WHEN 'register' THEN 'string' WHEN 'counter' THEN 'number' WHEN 'set' THEN 'array' ELSE 'boolean' END;
          IF cur IS NOT NULL AND jsonb_typeof(cur) <> want THEN
            err := 'wrong-type:' || (op->>'p') || ' is a ' || conveyor_kv_jtype(jsonb_typeof(cur)) || ', not a ' || (op->>'t');
            EXIT ops;
          END IF;
          CASE op->>'a'
            WHEN 'assign' THEN d := jsonb_set(d, path, op->'v');
            WHEN 'increment' THEN
              n := coalesce(cur::text::numeric, 0) + (op->>'v')::numeric;
              IF abs(n) > 9007199254740991 THEN err := 'bad-value:counter ' || (op->>'p') || ' would leave the safe integer range'; EXIT ops; END IF;
              d := jsonb_set(d, path, to_jsonb(n));
            WHEN 'add' THEN
              d := jsonb_set(d, path, (SELECT coalesce(jsonb_agg(DISTINCT m ORDER BY m), '[]'::jsonb)
                FROM (SELECT jsonb_array_elements(coalesce(cur, '[]'::jsonb)) UNION SELECT jsonb_array_elements(op->'v')) AS s(m)));
            WHEN 'remove' THEN
              d := jsonb_set(d, path, (SELECT coalesce(jsonb_agg(m ORDER BY m), '[]'::jsonb)
                FROM jsonb_array_elements(coalesce(cur, '[]'::jsonb)) AS s(m) WHERE NOT (op->'v') @> jsonb_build_array(m)));
            WHEN 'enable' THEN d := jsonb_set(d, path, 'true'::jsonb);
            ELSE d := jsonb_set(d, path, 'false'::jsonb);
          END CASE;
        END LOOP;
      END IF;
      IF err IS NULL THEN
        UPDATE ${table} SET kind = 'map', doc = d, version = version + 1
          WHERE bucket_type = it->>'t' AND bucket = it->>'b' AND key = it->>'key';
        res[ord] := 'ok';
      END IF;
    END IF;
    IF err IS NOT NULL THEN res[ord] := 'err:' || err; CONTINUE; END IF;
    -- Remember the applied ids, keeping the last max_ids.
    UPDATE ${table} SET applied = (applied || ids)[greatest(1, cardinality(applied) + cardinality(ids) - max_ids + 1):]
      WHERE bucket_type = it->>'t' AND bucket = it->>'b' AND key = it->>'key';
  END LOOP;
  RETURN res;
END
$fn$;`;
}

/** jsonb's type names as the datatype names users wrote. */
export const JTYPE_SQL = `
CREATE OR REPLACE FUNCTION conveyor_kv_jtype(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE t WHEN 'string' THEN 'register' WHEN 'number' THEN 'counter' WHEN 'array' THEN 'set'
    WHEN 'boolean' THEN 'flag' WHEN 'object' THEN 'map' ELSE t END
$$;`;
