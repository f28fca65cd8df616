/**
 * The PostgreSQL backend's schema: one row per object, the map (or plain value) as one jsonb
 * document — `{ "views": 3, "tags": ["a"], "seen": true, "addr": { "city": "Paris" } }`, so it
 * reads and queries as plain JSON — and one function that applies a whole batch in one statement.
 * The function takes row locks in (type, bucket, key) order, so two batches never deadlock, and
 * reads and writes each object once per batch however many writes it gets; a write that does not
 * fit what is stored is reported in-band and changes nothing.
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
) WITH (fillfactor = 70); -- room on each page for HOT updates: every batch rewrites its rows
CREATE OR REPLACE FUNCTION ${fn}(items jsonb, max_ids int) RETURNS text[] LANGUAGE plpgsql AS $fn$
DECLARE
  it jsonb; op jsonb; ord bigint; m text; r record; p int := 1; nitems int; its jsonb[]; ords bigint[];
  res text[] := array_fill(''::text, ARRAY[jsonb_array_length(items)]);
  -- The object being worked on: loaded and locked once, written back once, with all the others.
  kind_ text; doc_ jsonb; ts_ bigint; id_ text; ver bigint; applied_ text[]; dirty boolean;
  o_t text[] := '{}'; o_b text[] := '{}'; o_k text[] := '{}'; o_kind text[] := '{}'; o_doc jsonb[] := '{}';
  o_ts bigint[] := '{}'; o_id text[] := '{}'; o_ver bigint[] := '{}'; o_applied text[] := '{}';
  d jsonb; path text[]; sub jsonb; val jsonb; want text; err text; n numeric; i int; ids text[];
BEGIN
  -- Every object the batch touches exists (possibly empty) before any lock is taken, in key order.
  -- (Only the missing ones: a speculative insert per existing key costs more than the anti-join.)
  INSERT INTO ${table} (bucket_type, bucket, key)
    SELECT DISTINCT e->>'t', e->>'b', e->>'key' FROM jsonb_array_elements(items) AS e
    WHERE NOT EXISTS (SELECT 1 FROM ${table} AS o WHERE o.bucket_type = e->>'t' AND o.bucket = e->>'b' AND o.key = e->>'key')
    ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING;
  SELECT array_agg(e.value ORDER BY e.value->>'t' COLLATE "C", e.value->>'b' COLLATE "C", e.value->>'key' COLLATE "C", e.ordinality),
         array_agg(e.ordinality ORDER BY e.value->>'t' COLLATE "C", e.value->>'b' COLLATE "C", e.value->>'key' COLLATE "C", e.ordinality)
    INTO its, ords FROM jsonb_array_elements(items) WITH ORDINALITY AS e;
  nitems := coalesce(array_length(its, 1), 0);
  -- One statement locks every row in key order (two batches never deadlock); the items, sorted
  -- the same way, are walked alongside.
  FOR r IN
    SELECT bucket_type, bucket, key, kind, doc, ts, last_id, version, applied FROM ${table}
    WHERE (bucket_type, bucket, key) IN (SELECT e->>'t', e->>'b', e->>'key' FROM jsonb_array_elements(items) AS e)
    ORDER BY bucket_type COLLATE "C", bucket COLLATE "C", key COLLATE "C" FOR UPDATE
  LOOP
  kind_ := r.kind; doc_ := r.doc; ts_ := r.ts; id_ := r.last_id; ver := r.version; applied_ := r.applied; dirty := false;
  WHILE p <= nitems AND its[p]->>'key' = r.key AND its[p]->>'b' = r.bucket AND its[p]->>'t' = r.bucket_type LOOP
    it := its[p]; ord := ords[p]; p := p + 1;
    err := NULL;
    ids := ARRAY[it->>'id'];
    IF it->>'k' = 'c' THEN
      IF kind_ = 'map' THEN err := 'wrong-type:the key holds a map, not a plain value';
      ELSIF ver <> (it->>'ver')::bigint THEN res[ord] := 'conflict'; CONTINUE;
      ELSE
        SELECT array_agg(x) INTO ids FROM jsonb_array_elements_text(it->'ids') AS x;
        kind_ := 'value'; doc_ := it->'v'; ts_ := (it->>'ts')::bigint; id_ := it->>'id'; ver := ver + 1;
        res[ord] := 'ok';
      END IF;
    ELSIF (it->>'id') = ANY(applied_) THEN
      res[ord] := 'dup'; CONTINUE;
    ELSIF it->>'k' = 'p' THEN
      IF kind_ = 'map' THEN err := 'wrong-type:the key holds a map, not a plain value';
      -- Ties on the timestamp go to the larger id in byte order, as Redis's script compares them.
      ELSIF kind_ = 'value' AND ((it->>'ts')::bigint, (it->>'id') COLLATE "C") <= (ts_, id_ COLLATE "C") THEN
        res[ord] := 'stale';
      ELSE
        kind_ := 'value'; doc_ := it->'v'; ts_ := (it->>'ts')::bigint; id_ := it->>'id'; ver := ver + 1;
        res[ord] := 'ok';
      END IF;
    ELSE
      IF kind_ = 'value' THEN err := 'wrong-type:the key holds a plain value, not a map'; END IF;
      d := doc_;
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
          val := d #> path;
          want := CASE op->>'t' WHEN 'register' THEN 'string' WHEN 'counter' THEN 'number' WHEN 'set' THEN 'array' ELSE 'boolean' END;
          IF val IS NOT NULL AND jsonb_typeof(val) <> want THEN
            err := 'wrong-type:' || (op->>'p') || ' is a ' || conveyor_kv_jtype(jsonb_typeof(val)) || ', not a ' || (op->>'t');
            EXIT ops;
          END IF;
          CASE op->>'a'
            WHEN 'assign' THEN d := jsonb_set(d, path, op->'v');
            WHEN 'increment' THEN
              n := coalesce((val #>> '{}')::numeric, 0) + (op->>'v')::numeric;
              IF abs(n) > 9007199254740991 THEN err := 'bad-value:counter ' || (op->>'p') || ' would leave the safe integer range'; EXIT ops; END IF;
              d := jsonb_set(d, path, to_jsonb(n));
            WHEN 'add' THEN
              val := coalesce(val, '[]'::jsonb);
              FOR m IN SELECT jsonb_array_elements_text(op->'v') LOOP
                IF NOT val ? m THEN val := val || to_jsonb(m); END IF;
              END LOOP;
              d := jsonb_set(d, path, val);
            WHEN 'remove' THEN
              val := coalesce(val, '[]'::jsonb);
              FOR m IN SELECT jsonb_array_elements_text(op->'v') LOOP val := val - m; END LOOP;
              d := jsonb_set(d, path, val);
            WHEN 'enable' THEN d := jsonb_set(d, path, 'true'::jsonb);
            ELSE d := jsonb_set(d, path, 'false'::jsonb);
          END CASE;
        END LOOP;
      END IF;
      IF err IS NULL THEN
        kind_ := 'map'; doc_ := d; ver := ver + 1;
        res[ord] := 'ok';
      END IF;
    END IF;
    IF err IS NOT NULL THEN res[ord] := 'err:' || err; CONTINUE; END IF;
    -- Remember the applied ids, keeping the last max_ids.
    applied_ := applied_ || ids;
    IF cardinality(applied_) > max_ids THEN applied_ := applied_[cardinality(applied_) - max_ids + 1:]; END IF;
    dirty := true;
  END LOOP;
  IF dirty THEN
    o_t := o_t || r.bucket_type; o_b := o_b || r.bucket; o_k := o_k || r.key; o_kind := o_kind || kind_; o_doc := o_doc || doc_;
    o_ts := o_ts || ts_; o_id := o_id || id_; o_ver := o_ver || ver; o_applied := o_applied || applied_::text;
  END IF;
  END LOOP;
  IF p <= nitems THEN RAISE EXCEPTION 'kv apply: % writes matched no row', nitems - p + 1; END IF;
  UPDATE ${table} AS o SET kind = x.kind, doc = x.doc, ts = x.ts, last_id = x.id, version = x.ver, applied = x.applied::text[]
    FROM unnest(o_t, o_b, o_k, o_kind, o_doc, o_ts, o_id, o_ver, o_applied) AS x(t, b, k, kind, doc, ts, id, ver, applied)
    WHERE o.bucket_type = x.t AND o.bucket = x.b AND o.key = x.k;
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
