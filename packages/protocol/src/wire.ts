// The project's schema, compiled once per process.

import { compileSchema } from './codegen.js';
import { messages } from './schema.js';

export const wire = compileSchema(messages);
