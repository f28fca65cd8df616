/**
 * The talk's schemas, attrs + cattrs in Python: typed, versioned messages whose bodies are CBOR
 * (cbor2 there, the default codec here). A reader upgrades old versions on the way in — the
 * talk's "soft scheme upgrade" — so producers and consumers need not be deployed together.
 */
import { defineMessage } from 'conveyor-pipelines';
import { z } from 'zod';

/** `@attr.s class Book: title: str = attr.ib(converter=str.capitalize, default='')`. */
export const Book = defineMessage({
  name: 'book',
  topic: 'books',
  schema: z.object({
    title: z
      .string()
      .default('')
      .transform((t) => t.charAt(0).toUpperCase() + t.slice(1).toLowerCase()),
  }),
});

/** `class Box(BaseSchema): x0: float; y0: float; ...`, nested in Prediction. */
const Box = z.object({ x0: z.number(), y0: z.number(), x1: z.number(), y1: z.number() });

/** Version 1, as an older detector still writes it: the box as a flat [x0, y0, x1, y1] list. */
const predictionV1 = z.object({ bbox: z.tuple([z.number(), z.number(), z.number(), z.number()]), value: z.number() });
export const PredictionV1 = defineMessage({ name: 'prediction', topic: 'predictions', version: 1, schema: predictionV1 });

/** Version 2, `class Prediction(BaseSchema): box: Box; value: float`. Readers of v2 upgrade v1. */
export const Prediction = defineMessage({
  name: 'prediction',
  topic: 'predictions',
  version: 2,
  schema: z.object({ box: Box, value: z.number().min(0).max(1) }),
  upgrade: {
    1: (v1: z.infer<typeof predictionV1>) => ({
      box: { x0: v1.bbox[0], y0: v1.bbox[1], x1: v1.bbox[2], y1: v1.bbox[3] },
      value: v1.value,
    }),
  },
});
