// Where each `const volatile` knob lives in .rodata, read from the object's BTF.
//
// clang describes every global of a data section in a BTF DATASEC type named after the section,
// whose members (btf_var_secinfo) give each variable's type id, offset and size:
//   struct btf_type        { u32 name_off; u32 info; u32 size; }   info & 0xffff = vlen
//   struct btf_var_secinfo { u32 type; u32 offset; u32 size; }     × vlen, right after it
// and each VAR type names the variable. libbpf has fixed the offsets up by the time the object
// is open.

import { btf__find_by_name_kind, btf__name_by_offset, btf__type_by_id, type Ptr } from './libbpf.js';
import { copyOut } from './memory.js';

const BTF_KIND_DATASEC = 15;
const BTF_TYPE_SIZE = 12;
const SECINFO_SIZE = 12;

export interface VariableLayout {
  name: string;
  /** Byte offset in the section. */
  offset: number;
  size: number;
}

/** The variables of data section `section` ('.rodata'), or [] when the object has none. */
export function sectionVariables(btf: Ptr, section: string): VariableLayout[] {
  if (!btf) return [];
  const id = btf__find_by_name_kind(btf, section, BTF_KIND_DATASEC);
  if (id <= 0) return [];
  const datasec = btf__type_by_id(btf, id);
  if (!datasec) return [];
  const vlen = copyOut(datasec, BTF_TYPE_SIZE).readUInt32LE(4) & 0xffff;
  if (vlen === 0) return [];
  const secinfo = copyOut(datasec + BTF_TYPE_SIZE, vlen * SECINFO_SIZE);
  const vars: VariableLayout[] = [];
  for (let i = 0; i < vlen; i++) {
    const p = i * SECINFO_SIZE;
    const varType = btf__type_by_id(btf, secinfo.readUInt32LE(p));
    if (!varType) continue;
    const nameOff = copyOut(varType, 4).readUInt32LE(0);
    vars.push({ name: btf__name_by_offset(btf, nameOff), offset: secinfo.readUInt32LE(p + 4), size: secinfo.readUInt32LE(p + 8) });
  }
  return vars;
}
