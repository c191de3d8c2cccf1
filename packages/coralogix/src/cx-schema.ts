/**
 * Coralogix's own types for the Alerts API v3, to check the alert definitions we send
 * against: the prost code generated from Coralogix's protos, as published in their Rust
 * management SDK (crates.io crate `cx-api`). No copy of the protos lives in this repo, so
 * a schema change on their side shows up when the pinned version is bumped, not as a
 * stale hand-written schema.
 *
 *   - `coralogixAlertsSource` fetches the crate once, checks it against the checksum in
 *     the crates.io index, and returns the generated Rust for `com.coralogixapis.alerts.v3`;
 *   - `parseProstModule` reads prost's output into messages, oneofs and enums;
 *   - `validateProto3Json` checks a proto3 JSON value against one message of that model.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const CX_API_VERSION = '1.9.2';
/** The crate's sha256 as crates.io published it (its index's `cksum`), pinned here too. */
const CX_API_SHA256 = 'cc324d0062a9c462c829100c4b62a22f22251864588ff5f8a38e8a7d9960974c';
const CRATE = 'cx-api';
const CRATE_URL = `https://static.crates.io/crates/${CRATE}/${CRATE}-${CX_API_VERSION}.crate`;
const INDEX_URL = `https://index.crates.io/cx/-a/${CRATE}`;
const ALERTS_MEMBER = `${CRATE}-${CX_API_VERSION}/src/generated/com.coralogixapis.alerts.v3.rs`;

// ---------------------------------------------------------------------------------------
// The crate

/** Throws unless `bytes` hash to `expected` (hex sha256). */
export function verifySha256(bytes: Uint8Array, expected: string, what: string): void {
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== expected.toLowerCase()) {
    throw new Error(`sha256 mismatch for ${what}: expected ${expected}, got ${actual}; the file is corrupt or not the published one`);
  }
}

/** The `cksum` of one version in a crates.io index file (one JSON object per line). */
export function crateChecksumFromIndex(indexText: string, version: string): string {
  for (const line of indexText.split('\n')) {
    if (!line.trim()) continue;
    const entry = JSON.parse(line) as { vers?: unknown; cksum?: unknown };
    if (entry.vers !== version) continue;
    if (typeof entry.cksum !== 'string' || !/^[0-9a-f]{64}$/i.test(entry.cksum)) {
      throw new Error(`the crates.io index line for ${CRATE} ${version} has no valid cksum`);
    }
    return entry.cksum;
  }
  throw new Error(`the crates.io index has no ${CRATE} ${version}`);
}

async function download(url: string): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  } catch (error) {
    throw new Error(`could not download ${url}: ${(error as Error).message}`, { cause: error });
  }
  if (!response.ok) throw new Error(`could not download ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** Written under a temporary name first, so an interrupted run leaves no half file behind. */
async function writeAtomically(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

/**
 * The generated Rust of `com.coralogixapis.alerts.v3` from `cx-api` 1.9.2. The crate and
 * the checksum the index gave for it are kept in `cacheDir`; every call checks the cached
 * crate against that checksum again and extracts the file from it, so the text returned
 * is always the verified crate's.
 */
export async function coralogixAlertsSource(
  cacheDir = path.join(process.env.BFL_TOOLS_CACHE || path.join(os.homedir(), '.cache/black-friday-lab/tools'), `cx-api-${CX_API_VERSION}`),
): Promise<string> {
  const crateFile = path.join(cacheDir, `${CRATE}-${CX_API_VERSION}.crate`);
  const sumFile = `${crateFile}.sha256`;
  await mkdir(cacheDir, { recursive: true });

  if (existsSync(crateFile) && existsSync(sumFile)) {
    const expected = (await readFile(sumFile, 'utf8')).trim();
    try {
      verifySha256(await readFile(crateFile), expected, crateFile);
    } catch (error) {
      throw new Error(`${(error as Error).message}. Delete ${cacheDir} to download it again.`, { cause: error });
    }
  } else {
    const expected = crateChecksumFromIndex(new TextDecoder().decode(await download(INDEX_URL)), CX_API_VERSION);
    if (expected !== CX_API_SHA256)
      throw new Error(`crates.io lists ${CRATE} ${CX_API_VERSION} with sha256 ${expected}, not the pinned ${CX_API_SHA256}`);
    const bytes = await download(CRATE_URL);
    verifySha256(bytes, expected, CRATE_URL);
    await writeAtomically(crateFile, bytes);
    await writeAtomically(sumFile, `${expected}\n`);
  }

  // A .crate is a gzipped tar; the system tar (GNU or bsd) writes the one member to stdout.
  const { stdout } = await run('tar', ['-xzOf', crateFile, ALERTS_MEMBER], { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' });
  if (!stdout.includes('@generated by prost-build')) throw new Error(`${ALERTS_MEMBER} in ${crateFile} is not prost output`);
  await writeAtomically(path.join(cacheDir, path.basename(ALERTS_MEMBER)), stdout);
  return stdout;
}

// ---------------------------------------------------------------------------------------
// The model

export type ScalarType =
  | 'double'
  | 'float'
  | 'int32'
  | 'int64'
  | 'uint32'
  | 'uint64'
  | 'sint32'
  | 'sint64'
  | 'fixed32'
  | 'fixed64'
  | 'sfixed32'
  | 'sfixed64'
  | 'bool'
  | 'string'
  | 'bytes';

export type FieldType =
  /** `wrapper`: a google.protobuf.*Value message, which proto3 JSON writes as the bare scalar. */
  | { kind: 'scalar'; scalar: ScalarType; wrapper: boolean }
  | { kind: 'message'; message: string }
  | { kind: 'enum'; enum: string }
  /** A type from another generated module, a well-known type, or anything not understood. */
  | { kind: 'unresolved'; rust: string };

export interface ProtoField {
  /** The proto field name (snake_case; for a oneof member derived from prost's variant name). */
  name: string;
  /** lowerCamelCase, what proto3 JSON writes. */
  jsonName: string;
  tag: number;
  label: 'singular' | 'optional' | 'repeated' | 'map';
  /** For a map, the type of its values. */
  type: FieldType;
  mapKey?: ScalarType;
  /** The oneof this field is a member of. */
  oneof?: string;
}

export interface ProtoMessage {
  /** Rust path within the module: `AlertDefProperties`, or `some_message::Nested`. */
  name: string;
  fields: ProtoField[];
}

export interface ProtoEnum {
  name: string;
  /** `name` is the proto enum value name, which proto3 JSON writes. */
  values: { name: string; number: number }[];
}

export interface ProtoModel {
  messages: Map<string, ProtoMessage>;
  enums: Map<string, ProtoEnum>;
  /** Every reference the model could not follow: where (`Message.field`) and the Rust type. */
  unresolved: { at: string; rust: string }[];
}

// ---------------------------------------------------------------------------------------
// Reading Rust: just enough for prost's output. Comments are dropped first; string
// literals are skipped when matching brackets (the enum names live in them).

function stripComments(src: string): string {
  let out = '';
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '"') {
      const end = stringEnd(src, i);
      out += src.slice(i, end);
      i = end;
    } else if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      i = end < 0 ? src.length : end + 2;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Index just past the string literal starting at `start`. */
function stringEnd(src: string, start: number): number {
  let i = start + 1;
  while (i < src.length && src[i] !== '"') i += src[i] === '\\' ? 2 : 1;
  return i + 1;
}

const OPEN: Record<string, string> = { '(': ')', '[': ']', '{': '}' };

/** Index of the bracket closing the one at `start` (the other bracket kinds nest inside). */
function matching(src: string, start: number): number {
  const stack: string[] = [];
  for (let i = start; i < src.length; i++) {
    const c = src[i]!;
    if (c === '"') {
      i = stringEnd(src, i) - 1;
    } else if (c === '(' || c === '[' || c === '{') {
      stack.push(OPEN[c]!);
    } else if (c === ')' || c === ']' || c === '}') {
      if (stack.pop() !== c) throw new Error(`unbalanced "${c}" in the Rust source at offset ${i}`);
      if (stack.length === 0) return i;
    }
  }
  throw new Error(`unclosed bracket in the Rust source at offset ${start}`);
}

/** Splits on `sep` outside brackets (angle brackets included: `HashMap<K, V>`) and strings. */
function splitTopLevel(src: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '"') i = stringEnd(src, i) - 1;
    else if (c === '(' || c === '[' || c === '{' || c === '<') depth++;
    else if (c === ')' || c === ']' || c === '}' || (c === '>' && src[i - 1] !== '-')) depth--;
    else if (c === sep && depth === 0) {
      parts.push(src.slice(from, i));
      from = i + 1;
    }
  }
  parts.push(src.slice(from));
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

/** Leading `#[...]` / `#![...]` attributes (their inner text) and what follows them. */
function takeAttributes(src: string, at = 0): { attrs: string[]; rest: number } {
  const attrs: string[] = [];
  let i = at;
  for (;;) {
    while (i < src.length && /\s/.test(src[i]!)) i++;
    if (src[i] !== '#') return { attrs, rest: i };
    const open = src.indexOf('[', i);
    const close = matching(src, open);
    attrs.push(src.slice(open + 1, close).trim());
    i = close + 1;
  }
}

interface RustItem {
  attrs: string[];
  header: string;
  body?: string;
}

/** The items of a module (or impl) body: attributes, header up to `{` or `;`, and the braced body. */
function items(src: string): RustItem[] {
  const out: RustItem[] = [];
  let i = 0;
  while (i < src.length) {
    const { attrs, rest } = takeAttributes(src, i);
    i = rest;
    if (i >= src.length) break;
    let j = i;
    while (j < src.length && src[j] !== '{' && src[j] !== ';') {
      if (src[j] === '"') j = stringEnd(src, j);
      else if (src[j] === '(' || src[j] === '[') j = matching(src, j) + 1;
      else j++;
    }
    const header = src.slice(i, j).trim().replace(/\s+/g, ' ');
    if (src[j] === '{') {
      const close = matching(src, j);
      out.push({ attrs, header, body: src.slice(j + 1, close) });
      i = close + 1;
    } else {
      out.push({ attrs, header });
      i = j + 1;
    }
  }
  return out;
}

/** `#[prost(message, optional, tag = "1")]` → { message: '', optional: '', tag: '1' }. */
function prostAttribute(attrs: string[]): Map<string, string> | undefined {
  const attr = attrs.find((a) => /^prost\s*\(/.test(a));
  if (!attr) return undefined;
  const inner = attr.slice(attr.indexOf('(') + 1, attr.lastIndexOf(')'));
  const parsed = new Map<string, string>();
  for (const part of splitTopLevel(inner, ',')) {
    const m = /^(\w+)\s*(?:=\s*"((?:[^"\\]|\\.)*)")?$/.exec(part);
    if (m) parsed.set(m[1]!, m[2] ?? '');
  }
  return parsed;
}

function derives(attrs: string[], what: 'Message' | 'Oneof' | 'Enumeration'): boolean {
  return attrs.some((a) => a.startsWith('derive') && new RegExp(`\\bprost::${what}\\b`).test(a));
}

/** protoc's lowerCamelCase: drop each `_`, upper-casing the character after it. */
function protoJsonName(name: string): string {
  let out = '';
  let upper = false;
  for (const c of name) {
    if (c === '_') upper = true;
    else {
      out += upper ? c.toUpperCase() : c;
      upper = false;
    }
  }
  return out;
}

/** prost names a oneof variant by UpperCamelCase of the proto field; this goes back to snake_case. */
function snakeCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

const RUST_SCALARS: Record<string, ScalarType> = {
  String: 'string',
  '::prost::alloc::string::String': 'string',
  bool: 'bool',
  f64: 'double',
  f32: 'float',
  i32: 'int32',
  u32: 'uint32',
  i64: 'int64',
  u64: 'uint64',
  'Vec<u8>': 'bytes',
  '::prost::alloc::vec::Vec<u8>': 'bytes',
  '::prost::bytes::Bytes': 'bytes',
};

const PROST_SCALARS = new Set<string>([
  'double',
  'float',
  'int32',
  'int64',
  'uint32',
  'uint64',
  'sint32',
  'sint64',
  'fixed32',
  'fixed64',
  'sfixed32',
  'sfixed64',
  'bool',
  'string',
  'bytes',
]);

/** `::core::option::Option<X>` → `X`, one layer of the first of `wrappers` that matches, if any. */
function peel(rust: string, wrappers: string[]): string {
  const w = wrappers.find((name) => rust.startsWith(`${name}<`) && rust.endsWith('>'));
  return w ? rust.slice(w.length + 1, -1) : rust;
}
const OPTION = ['::core::option::Option', 'core::option::Option', 'Option'];
const VEC = ['::prost::alloc::vec::Vec', 'prost::alloc::vec::Vec', 'Vec'];
const BOX = ['::prost::alloc::boxed::Box', 'prost::alloc::boxed::Box', 'Box'];

interface RawField {
  attr: Map<string, string>;
  name: string;
  rust: string;
}
interface Declared {
  scope: string[];
  fields: RawField[];
}

/**
 * Reads prost-generated Rust (one `.rs` of a package, nested `pub mod` scopes included)
 * into messages and enums. Oneofs become members of their message, marked with the
 * oneof's name.
 */
export function parseProstModule(rs: string): ProtoModel {
  const messages = new Map<string, Declared>();
  const oneofs = new Map<string, Declared>();
  const enums = new Map<string, Map<string, number>>();
  const enumNames = new Map<string, Map<string, string>>();

  const walk = (src: string, scope: string[]) => {
    for (const item of items(src)) {
      const m = /^(pub mod|pub struct|pub enum|impl) (\w+)$/.exec(item.header);
      if (!m) continue;
      const what = m[1]!;
      const name = m[2]!;
      const key = [...scope, name].join('::');
      const body = item.body ?? '';
      if (what === 'pub mod') walk(body, [...scope, name]);
      else if (what === 'pub struct' && derives(item.attrs, 'Message')) messages.set(key, { scope, fields: structFields(body) });
      else if (what === 'pub enum' && derives(item.attrs, 'Oneof')) oneofs.set(key, { scope, fields: oneofVariants(body) });
      else if (what === 'pub enum' && derives(item.attrs, 'Enumeration')) enums.set(key, enumNumbers(body));
      else if (what === 'impl') {
        const asStr = items(body).find((fn) => /\bfn as_str_name\b/.test(fn.header));
        if (asStr?.body) {
          const names = new Map<string, string>();
          for (const arm of asStr.body.matchAll(/Self::(\w+)\s*=>\s*\{?\s*"((?:[^"\\]|\\.)*)"/g)) names.set(arm[1]!, arm[2]!);
          enumNames.set(key, names);
        }
      }
    }
  };
  walk(stripComments(rs), []);

  const unresolved: ProtoModel['unresolved'] = [];
  const model: ProtoModel = { messages: new Map(), enums: new Map(), unresolved };

  for (const [name, numbers] of enums) {
    const names = enumNames.get(name);
    const values: ProtoEnum['values'] = [];
    for (const [variant, number] of numbers) {
      const protoName = names?.get(variant);
      if (protoName === undefined) unresolved.push({ at: `${name}::${variant}`, rust: `${name} (no as_str_name arm)` });
      else values.push({ name: protoName, number });
    }
    model.enums.set(name, { name, values });
  }

  /** Rust path lookup as rustc does it for prost's paths: relative to the scope, `super::` going up. */
  const resolve = (scope: string[], rust: string, table: Map<string, unknown>): string | undefined => {
    if (rust.startsWith('::') || rust.startsWith('crate::')) return undefined;
    const segments = rust.split('::');
    const at = [...scope];
    while (segments[0] === 'super' || segments[0] === 'self') {
      if (segments.shift() === 'super' && at.pop() === undefined) return undefined;
    }
    const key = [...at, ...segments].join('::');
    return table.has(key) ? key : undefined;
  };

  const typeOf = (attr: Map<string, string>, rust: string, scope: string[], at: string): FieldType => {
    const unresolvedType = (what: string): FieldType => {
      unresolved.push({ at, rust: what });
      return { kind: 'unresolved', rust: what };
    };
    const enumeration = attr.get('enumeration');
    if (enumeration !== undefined) {
      const e = resolve(scope, enumeration, enums);
      return e ? { kind: 'enum', enum: e } : unresolvedType(enumeration);
    }
    if (attr.has('message')) {
      const compact = rust.replace(/\s+/g, '').replace(/,>$/, '>');
      const inner = peel(peel(peel(compact, OPTION), attr.has('repeated') ? VEC : []), BOX);
      const scalar = RUST_SCALARS[inner];
      if (scalar) return { kind: 'scalar', scalar, wrapper: true };
      const message = resolve(scope, inner, messages);
      return message ? { kind: 'message', message } : unresolvedType(inner);
    }
    const scalar = [...attr.keys()].find((k) => PROST_SCALARS.has(k));
    return scalar ? { kind: 'scalar', scalar: scalar as ScalarType, wrapper: false } : unresolvedType(rust);
  };

  const field = (raw: RawField, scope: string[], at: string, oneof?: string): ProtoField => {
    const tag = Number(raw.attr.get('tag'));
    const base = { name: raw.name, jsonName: protoJsonName(raw.name), tag, ...(oneof ? { oneof } : {}) };
    const map = raw.attr.get('map') ?? raw.attr.get('btree_map');
    if (map !== undefined) {
      const [key = '', value = ''] = map.split(',').map((s) => s.trim());
      const [, rustValue = ''] = splitTopLevel(raw.rust.replace(/^[^<]*<|>$/g, ''), ',');
      const enumValue = /^enumeration\((.+)\)$/.exec(value);
      const valueAttr = new Map<string, string>(enumValue ? [['enumeration', enumValue[1]!]] : [[value, '']]);
      const mapKey = PROST_SCALARS.has(key) ? (key as ScalarType) : 'string';
      if (!PROST_SCALARS.has(key)) unresolved.push({ at, rust: `map key ${key}` });
      return { ...base, label: 'map', mapKey, type: typeOf(valueAttr, rustValue, scope, at) };
    }
    const label = raw.attr.has('repeated') ? 'repeated' : raw.attr.has('optional') || oneof ? 'optional' : 'singular';
    return { ...base, label, type: typeOf(raw.attr, raw.rust, scope, at) };
  };

  for (const [name, { scope, fields }] of messages) {
    const out: ProtoField[] = [];
    for (const raw of fields) {
      const at = `${name}.${raw.name}`;
      const oneofPath = raw.attr.get('oneof');
      if (oneofPath === undefined) {
        out.push(field(raw, scope, at));
        continue;
      }
      const oneofKey = resolve(scope, oneofPath, oneofs);
      const oneof = oneofKey ? oneofs.get(oneofKey) : undefined;
      if (!oneof) {
        unresolved.push({ at, rust: oneofPath });
        continue;
      }
      for (const variant of oneof.fields) out.push(field(variant, oneof.scope, `${name}.${variant.name}`, raw.name));
    }
    model.messages.set(name, { name, fields: out });
  }
  return model;
}

/** `#[prost(...)] pub name: Type` for each field of a struct body. */
function structFields(body: string): RawField[] {
  const out: RawField[] = [];
  for (const part of splitTopLevel(body, ',')) {
    const { attrs, rest } = takeAttributes(part);
    const attr = prostAttribute(attrs);
    const m = /^pub\s+(?:r#)?(\w+)\s*:\s*([\s\S]+)$/.exec(part.slice(rest).trim());
    if (attr && m) out.push({ attr, name: m[1]!, rust: m[2]!.trim() });
  }
  return out;
}

/** `#[prost(...)] VariantName(Type)` for each variant of a oneof; the variant names the proto field. */
function oneofVariants(body: string): RawField[] {
  const out: RawField[] = [];
  for (const part of splitTopLevel(body, ',')) {
    const { attrs, rest } = takeAttributes(part);
    const attr = prostAttribute(attrs);
    const m = /^(\w+)\s*\(([\s\S]+)\)$/.exec(part.slice(rest).trim());
    if (attr && m) out.push({ attr, name: snakeCase(m[1]!), rust: m[2]!.trim() });
  }
  return out;
}

/** `Variant = 3` for each value of an enumeration. */
function enumNumbers(body: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of splitTopLevel(body, ',')) {
    const { rest } = takeAttributes(part);
    const m = /^(\w+)\s*=\s*(-?\d+)$/.exec(part.slice(rest).trim());
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Validating proto3 JSON

const INT_RANGES: Partial<Record<ScalarType, [bigint, bigint]>> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};
const IS_64 = new Set<ScalarType>(['int64', 'sint64', 'sfixed64', 'uint64', 'fixed64']);
const FLOAT_MAX = 3.4028234663852886e38;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v)}`;
  return `${typeof v} ${String(v)}`;
}

function typeName(type: FieldType): string {
  switch (type.kind) {
    case 'scalar':
      return type.scalar;
    case 'message':
      return type.message;
    case 'enum':
      return `enum ${type.enum}`;
    case 'unresolved':
      return type.rust;
  }
}

const join = (at: string, key: string) => (at ? `${at}.${key}` : key);
const mapEntry = (at: string, key: string) => (/^[A-Za-z_$][\w$]*$/.test(key) ? join(at, key) : `${at}[${JSON.stringify(key)}]`);
const where = (at: string) => at || '(root)';

const lookups = new WeakMap<ProtoMessage, Map<string, ProtoField>>();
/** Parsers accept a field by its JSON name and by its proto name. */
function fieldLookup(message: ProtoMessage): Map<string, ProtoField> {
  let lookup = lookups.get(message);
  if (!lookup) {
    lookup = new Map();
    for (const f of message.fields) {
      lookup.set(f.name, f);
      lookup.set(f.jsonName, f);
    }
    lookups.set(message, lookup);
  }
  return lookup;
}

/**
 * Problems of `value` as the proto3 JSON of `messageName` (a key of `model.messages`),
 * each prefixed with its JSON path; none means it fits. Stricter than the spec's parsers
 * in one way: 32-bit integers, floats and doubles must be JSON numbers, not numeric
 * strings (only 64-bit integers may be either), which is the form we write.
 */
export function validateProto3Json(model: ProtoModel, messageName: string, value: unknown): string[] {
  const root = model.messages.get(messageName);
  if (!root) throw new Error(`no message ${messageName} in the model`);
  const problems: string[] = [];

  const checkScalar = (scalar: ScalarType, v: unknown, at: string) => {
    const expected = (what: string) => problems.push(`${where(at)}: expected ${what}, got ${describe(v)}`);
    switch (scalar) {
      case 'string':
        if (typeof v !== 'string') expected('a string');
        return;
      case 'bool':
        if (typeof v !== 'boolean') expected('a boolean');
        return;
      case 'bytes':
        if (typeof v !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) expected('a base64 string (bytes)');
        return;
      case 'double':
      case 'float':
        if (typeof v === 'string' && ['NaN', 'Infinity', '-Infinity'].includes(v)) return;
        if (typeof v !== 'number') expected(`a number (${scalar})`);
        else if (scalar === 'float' && Math.abs(v) > FLOAT_MAX) problems.push(`${where(at)}: ${v} is out of range for a float`);
        return;
      default: {
        const [min, max] = INT_RANGES[scalar]!;
        let n: bigint;
        if (typeof v === 'number') {
          if (!Number.isInteger(v)) return problems.push(`${where(at)}: ${v} is not an integer (${scalar})`);
          if (!Number.isSafeInteger(v)) return problems.push(`${where(at)}: ${v} is beyond 2^53; write it as a string (${scalar})`);
          n = BigInt(v);
        } else if (typeof v === 'string' && IS_64.has(scalar)) {
          if (!/^-?\d+$/.test(v)) return problems.push(`${where(at)}: ${JSON.stringify(v)} is not an integer (${scalar})`);
          n = BigInt(v);
        } else {
          return expected(IS_64.has(scalar) ? `an integer or a decimal string (${scalar})` : `an integer (${scalar})`);
        }
        if (n < min || n > max) problems.push(`${where(at)}: ${v} is out of range for ${scalar}`);
      }
    }
  };

  const checkValue = (type: FieldType, v: unknown, at: string) => {
    switch (type.kind) {
      case 'scalar':
        return checkScalar(type.scalar, v, at);
      case 'unresolved':
        return problems.push(`${where(at)}: cannot check: its type ${type.rust} is not in the model`);
      case 'message':
        return checkMessage(model.messages.get(type.message)!, v, at);
      case 'enum': {
        const e = model.enums.get(type.enum)!;
        if (typeof v === 'string') {
          if (!e.values.some((x) => x.name === v)) {
            problems.push(`${where(at)}: ${JSON.stringify(v)} is not one of ${e.values.map((x) => x.name).join(', ')}`);
          }
        } else if (typeof v === 'number') {
          if (!e.values.some((x) => x.number === v)) problems.push(`${where(at)}: ${v} is not a value of ${e.name}`);
        } else {
          problems.push(`${where(at)}: expected a string of ${e.name}, got ${describe(v)}`);
        }
      }
    }
  };

  const checkField = (f: ProtoField, v: unknown, at: string) => {
    if (f.label === 'repeated') {
      if (!Array.isArray(v)) return problems.push(`${at}: expected an array (repeated ${typeName(f.type)}), got ${describe(v)}`);
      v.forEach((element, i) => {
        if (element === null) problems.push(`${at}[${i}]: null is not allowed in a repeated field`);
        else checkValue(f.type, element, `${at}[${i}]`);
      });
    } else if (f.label === 'map') {
      const what = `map<${f.mapKey}, ${typeName(f.type)}>`;
      if (!isObject(v)) return problems.push(`${at}: expected an object (${what}), got ${describe(v)}`);
      for (const [key, element] of Object.entries(v)) {
        const entry = mapEntry(at, key);
        if (f.mapKey === 'bool' && key !== 'true' && key !== 'false') problems.push(`${entry}: the key is not "true" or "false"`);
        else if (f.mapKey && f.mapKey !== 'string' && f.mapKey !== 'bool') {
          if (!/^-?\d+$/.test(key)) problems.push(`${entry}: the key is not an integer (${f.mapKey})`);
          else checkScalar(f.mapKey, IS_64.has(f.mapKey) ? key : Number(key), entry);
        }
        if (element === null) problems.push(`${entry}: null is not allowed as a map value`);
        else checkValue(f.type, element, entry);
      }
    } else {
      checkValue(f.type, v, at);
    }
  };

  const checkMessage = (message: ProtoMessage, v: unknown, at: string) => {
    if (!isObject(v)) return problems.push(`${where(at)}: expected an object (${message.name}), got ${describe(v)}`);
    const lookup = fieldLookup(message);
    const seen = new Map<ProtoField, string>();
    const oneofs = new Map<string, string[]>();
    for (const [key, fieldValue] of Object.entries(v)) {
      const f = lookup.get(key);
      const fieldAt = join(at, key);
      if (!f) {
        problems.push(`${fieldAt}: unknown field (${message.name} has no field "${key}")`);
        continue;
      }
      const twin = seen.get(f);
      if (twin !== undefined) {
        problems.push(`${fieldAt}: the same field as ${twin}`);
        continue;
      }
      seen.set(f, key);
      // null is the field's default in proto3 JSON: as good as leaving it out.
      if (fieldValue === null) continue;
      if (f.oneof) oneofs.set(f.oneof, [...(oneofs.get(f.oneof) ?? []), key]);
      checkField(f, fieldValue, fieldAt);
    }
    for (const [oneof, members] of oneofs) {
      if (members.length > 1) problems.push(`${where(at)}: more than one member of oneof "${oneof}" is set: ${members.join(', ')}`);
    }
  };

  checkMessage(root, value, '');
  return problems;
}

/** The member of `oneof` set in `value` (by JSON or proto name), if any: e.g. which type definition an alert has. */
export function presentOneof(model: ProtoModel, messageName: string, oneof: string, value: Record<string, unknown>): string | undefined {
  const message = model.messages.get(messageName);
  if (!message) throw new Error(`no message ${messageName} in the model`);
  const member = message.fields.find((f) => f.oneof === oneof && (value[f.jsonName] ?? value[f.name]) != null);
  return member?.jsonName;
}
