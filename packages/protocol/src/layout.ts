// Byte layout of each message, derived from the schema: fixed-width fields first, at fixed
// offsets in the order declared, then the variable-length fields in the order declared.

import { type FieldType, fixedWidth, isVariable } from './field-types.js';
import { MAX_MESSAGE_SIZE, MESSAGE_HEADER_SIZE } from './framing.js';
import { type MessageSpec, RESERVED_IDS } from './schema.js';

export interface FixedFieldLayout {
  readonly name: string;
  readonly type: FieldType;
  readonly offset: number;
  readonly width: number;
}

export interface MessageLayout {
  readonly spec: MessageSpec;
  readonly fixed: readonly FixedFieldLayout[];
  readonly variable: readonly { readonly name: string; readonly type: FieldType }[];
  /** Bytes of header and fixed fields: where the variable part starts. */
  readonly fixedSize: number;
  /** The shortest valid message: fixed part plus a zero length for each variable field. */
  readonly minSize: number;
}

export function layoutMessage(spec: MessageSpec): MessageLayout {
  const fixed: FixedFieldLayout[] = [];
  const variable: { name: string; type: FieldType }[] = [];
  let offset = MESSAGE_HEADER_SIZE;
  for (const field of spec.fields) {
    const width = fixedWidth(field.type);
    if (width !== undefined) {
      fixed.push({ name: field.name, type: field.type, offset, width });
      offset += width;
    } else if (isVariable(field.type)) {
      variable.push({ name: field.name, type: field.type });
    } else {
      throw new Error(`schema: ${spec.name}.${field.name} has unknown type ${field.type}`);
    }
  }
  return { spec, fixed, variable, fixedSize: offset, minSize: offset + 2 * variable.length };
}

/** Lays out every message and checks the schema's own rules: unique ids and names, no reserved ids. */
export function layoutSchema(specs: readonly MessageSpec[]): MessageLayout[] {
  const ids = new Set<number>();
  const names = new Set<string>();
  return specs.map((spec) => {
    if (!Number.isInteger(spec.id) || spec.id < 1 || spec.id > 0xffff) throw new Error(`schema: ${spec.name} has invalid id ${spec.id}`);
    if (ids.has(spec.id)) throw new Error(`schema: id ${spec.id} is used twice`);
    if (names.has(spec.name)) throw new Error(`schema: name ${spec.name} is used twice`);
    const reserved = RESERVED_IDS.find((r) => spec.id >= r.from && spec.id <= r.to);
    if (reserved) throw new Error(`schema: ${spec.name} uses id ${spec.id}, reserved for ${reserved.purpose}`);
    if (!/^[A-Za-z_$][\w$]*$/.test(spec.name)) throw new Error(`schema: ${spec.name} is not an identifier`);
    for (const field of spec.fields) {
      if (!/^[A-Za-z_$][\w$]*$/.test(field.name)) throw new Error(`schema: ${spec.name}.${field.name} is not an identifier`);
    }
    ids.add(spec.id);
    names.add(spec.name);
    const layout = layoutMessage(spec);
    if (layout.minSize > MAX_MESSAGE_SIZE) throw new Error(`schema: ${spec.name} is larger than a message may be`);
    return layout;
  });
}
