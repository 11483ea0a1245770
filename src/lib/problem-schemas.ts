import { z } from '@hono/zod-openapi';

/** RFC 9457 problem document, as every error response is shaped. */
export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    code: z.string().openapi({ example: 'VALIDATION_FAILED' }),
    requestId: z.string(),
  })
  .openapi('Problem');

/** OpenAPI response entry for a problem with the given meaning. */
export const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: ProblemSchema } },
});
