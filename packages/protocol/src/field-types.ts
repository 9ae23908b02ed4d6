// The field types a message may carry, with their wire sizes and JavaScript types.
//
// Integers are little-endian. 64-bit integers travel as 8 bytes but are handed to
// JavaScript as numbers, exact up to 2^53: counters and nanosecond timestamps fit, and
// identifiers (socket ids) are assigned by the collector so that they fit too.

/** Field types with a fixed width on the wire. */
export const FIXED_WIDTH = {
  u8: 1,
  u16: 2,
  u32: 4,
  u64: 8,
  i32: 4,
  i64: 8,
  f64: 8,
  /** An IPv4 or IPv6 address: 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d). */
  ip: 16,
} as const;

/** Field types with a u16 length (or count) prefix on the wire. */
export const VARIABLE_TYPES = ['string', 'bytes', 'strings'] as const;

export type FixedScalarType = keyof typeof FIXED_WIDTH;
export type VariableType = (typeof VARIABLE_TYPES)[number];
/** A fixed-size byte array of N bytes, written `bytes[N]`. */
export type FixedBytesType = `bytes[${number}]`;
export type FieldType = FixedScalarType | VariableType | FixedBytesType;

/** The JavaScript type a decoder hands out (and an encoder accepts) for a field type. */
export type JsTypeOf<T extends FieldType> = T extends 'ip' | 'string'
  ? string
  : T extends 'strings'
    ? string[]
    : T extends 'bytes' | FixedBytesType
      ? Uint8Array
      : number;

/** What an encoder accepts: IP addresses may also be given as 16 raw bytes. */
export type JsInputTypeOf<T extends FieldType> = T extends 'ip' ? string | Uint8Array : JsTypeOf<T>;

const FIXED_BYTES = /^bytes\[(\d+)\]$/;

/** The width of a fixed field, or undefined for a variable-length one. */
export function fixedWidth(type: FieldType): number | undefined {
  if (type in FIXED_WIDTH) return FIXED_WIDTH[type as FixedScalarType];
  const m = FIXED_BYTES.exec(type);
  return m ? Number(m[1]) : undefined;
}

export function isVariable(type: FieldType): type is VariableType {
  return (VARIABLE_TYPES as readonly string[]).includes(type);
}
