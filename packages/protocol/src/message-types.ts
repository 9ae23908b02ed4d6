// TypeScript types derived from the schema table, so that code and wire cannot disagree.

import type { JsInputTypeOf, JsTypeOf } from './field-types.js';
import type { MessageName, MessageSpecOf } from './schema.js';

type FieldsOf<N extends MessageName> = MessageSpecOf<N>['fields'][number];

/** A decoded message, as handed to a handler. */
export type MessageOf<N extends MessageName> = { [F in FieldsOf<N> as F['name']]: JsTypeOf<F['type']> };

/** What an encoder accepts for a message. */
export type MessageInput<N extends MessageName> = { [F in FieldsOf<N> as F['name']]: JsInputTypeOf<F['type']> };

/**
 * Handlers by message name. The message object passed in is reused for the next message of
 * the same type: read it during the call, copy what must outlive it.
 */
export type MessageHandlers = { [N in MessageName]?: (message: Readonly<MessageOf<N>>) => void };
