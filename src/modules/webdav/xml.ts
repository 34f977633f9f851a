import { createRequire } from 'node:module';
import type * as Fxp from 'fast-xml-parser';
import { AppError } from '../../errors.ts';

// XML in and out of WebDAV (RFC 4918 §14), with fast-xml-parser for the parsing. Namespaces are resolved
// here (the parser keeps prefixes as written), so every element carries its expanded name.

export const DAV_NS = 'DAV:';
/** Request bodies larger than this are refused with 413 before parsing (issue 13). */
export const MAX_XML_BYTES = 1024 * 1024;

export interface XmlElement {
  ns: string;
  name: string;
  /** Attributes as written (prefixed names kept), values still escaped as in the source. */
  attrs: Record<string, string>;
  /** Namespace prefixes in scope at this element ('' = the default namespace). */
  scope: ReadonlyMap<string, string>;
  children: XmlNode[];
}
/** Text as in the source (entities and character references unexpanded: we never expand them). */
export type XmlNode = XmlElement | { text: string };

export const isElement = (n: XmlNode): n is XmlElement => 'name' in n;
export const elementsOf = (e: XmlElement) => e.children.filter(isElement);
export const isDav = (e: XmlElement, name: string) => e.ns === DAV_NS && e.name === name;

// fast-xml-parser is loaded on the first parse, not with the app: every CLI command builds the app and
// never parses XML (its ES build is ~20 files, ~60 ms of a short command; issue 12, CLI start-up). Its
// CommonJS build is one file, loaded synchronously here.
const require = createRequire(import.meta.url);
let fxp: { parser: Fxp.XMLParser; validator: typeof Fxp.XMLValidator } | undefined;
function xmlParser() {
  if (fxp) return fxp;
  const { XMLParser, XMLValidator } = require('fast-xml-parser') as typeof Fxp;
  fxp = { parser: new XMLParser(PARSER_OPTIONS), validator: XMLValidator };
  return fxp;
}

const PARSER_OPTIONS: Fxp.X2jOptions = {
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  allowBooleanAttributes: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: false,
};

function badXml(why: string): AppError {
  return new AppError('invalid_request', `the XML request body is not valid: ${why}`);
}

/**
 * Parses a request body into its root element. Document type declarations are refused outright, so no
 * entity can be declared and expanded (XML bombs, external entities: issue 13).
 */
export function parseXml(text: string): XmlElement {
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw badXml('document type declarations are not accepted');
  const { parser, validator } = xmlParser();
  const valid = validator.validate(text, { allowBooleanAttributes: false });
  if (valid !== true) throw badXml(valid.err.msg);
  const nodes = parser.parse(text) as RawNode[];
  const roots = nodes.map((n) => toNode(n, new Map([['xml', 'http://www.w3.org/XML/1998/namespace']]))).filter(isElement);
  if (roots.length !== 1) throw badXml('expected one root element');
  return roots[0]!;
}

type RawNode = Record<string, unknown> & { ':@'?: Record<string, string> };

function toNode(raw: RawNode, parentScope: ReadonlyMap<string, string>): XmlNode {
  if ('#text' in raw) return { text: String(raw['#text']) };
  const qname = Object.keys(raw).find((k) => k !== ':@')!;
  const allAttrs = raw[':@'] ?? {};
  let scope = parentScope;
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(allAttrs)) {
    if (k === 'xmlns' || k.startsWith('xmlns:')) {
      // Namespaces in XML 1.0 §3: a prefix cannot be bound to the empty name (litmus propfind_invalid2).
      if (k !== 'xmlns' && String(v) === '') throw badXml(`namespace prefix "${k.slice(6)}" is bound to an empty name`);
      if (scope === parentScope) scope = new Map(parentScope);
      (scope as Map<string, string>).set(k === 'xmlns' ? '' : k.slice(6), unescapeBasic(String(v)));
    } else attrs[k] = String(v);
  }
  const colon = qname.indexOf(':');
  const prefix = colon < 0 ? '' : qname.slice(0, colon);
  const name = colon < 0 ? qname : qname.slice(colon + 1);
  const ns = scope.get(prefix);
  if (ns === undefined && prefix !== '') throw badXml(`namespace prefix "${prefix}" is not declared`);
  for (const k of Object.keys(attrs)) {
    const p = k.includes(':') ? k.slice(0, k.indexOf(':')) : null;
    if (p !== null && !scope.has(p)) throw badXml(`namespace prefix "${p}" is not declared`);
  }
  const children = ((raw[qname] as RawNode[]) ?? []).map((c) => toNode(c, scope));
  return { ns: ns ?? '', name, attrs, scope, children };
}

function unescapeBasic(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

const XML_SPECIAL = /[&<>"]/;

export function escapeXml(s: string): string {
  // Most names and values need no escaping: skip the four replace passes for them (PROPFIND of 10,000 entries).
  if (!XML_SPECIAL.test(s)) return s;
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * Serializes nodes so they stand alone: each element declares its own namespace (and the prefixes its
 * attributes use), so a stored property value stays namespace-well-formed wherever it is returned.
 */
export function serializeNodes(nodes: readonly XmlNode[]): string {
  return nodes.map(serializeNode).join('');
}

function serializeNode(node: XmlNode): string {
  if (!isElement(node)) return node.text;
  let decl = ` xmlns="${escapeXml(node.ns)}"`;
  const declared = new Set<string>();
  let attrs = '';
  for (const [k, v] of Object.entries(node.attrs)) {
    const colon = k.indexOf(':');
    if (colon > 0) {
      const p = k.slice(0, colon);
      if (p !== 'xml' && !declared.has(p)) {
        declared.add(p);
        decl += ` xmlns:${p}="${escapeXml(node.scope.get(p) ?? '')}"`;
      }
    }
    attrs += ` ${k}="${v.replace(/"/g, '&quot;')}"`;
  }
  const inner = serializeNodes(node.children);
  return inner === '' ? `<${node.name}${decl}${attrs}/>` : `<${node.name}${decl}${attrs}>${inner}</${node.name}>`;
}

/** An element with the given expanded name and raw inner XML, for a response. */
export function elementXml(ns: string, name: string, inner: string | null): string {
  const tag = ns === DAV_NS ? `D:${name}` : name;
  const decl = ns === DAV_NS ? '' : ` xmlns="${escapeXml(ns)}"`;
  return inner === null || inner === '' ? `<${tag}${decl}/>` : `<${tag}${decl}>${inner}</${tag}>`;
}

/** The text content of an element (e.g. a DAV:href), character references left as written, then unescaped. */
export function textOf(e: XmlElement): string {
  return unescapeBasic(
    e.children
      .map((c) => (isElement(c) ? textOf(c) : c.text))
      .join('')
      .trim(),
  );
}
