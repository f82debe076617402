// The contract as a validator: reads openapi/openapi.yaml and checks one HTTP response
// (status, Content-Type, required headers, body) against the operation that returned it.
//
// The schemas are used as JSON Schema (Ajv) after three steps: every $ref is replaced by
// what it points to (a schema that refers to itself goes under "definitions" instead),
// allOf lists of object schemas are merged into one object schema, and every object
// schema without additionalProperties gets additionalProperties: false. The last step
// makes a field the server sends but the document does not describe fail the check, so
// the document stays complete.

import { readFileSync } from 'node:fs';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

export const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

// Return the value at a local JSON pointer ("#/components/schemas/Error") of doc.
function resolvePointer(doc, ref) {
    if (!ref.startsWith('#/'))
        throw new Error(`only local references are supported, not ${ref}`);
    let node = doc;
    for (const raw of ref.slice(2).split('/')) {
        const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
        if (node === null || typeof node !== 'object' || !(key in node))
            throw new Error(`unresolved reference ${ref}`);
        node = node[key];
    }
    return node;
}

// The name under "definitions" of a schema that refers to itself, such as a condition
// whose "of" lists conditions.
const DEFINITIONS = '#/definitions/';
function definitionName(ref) {
    return ref.slice(2).replaceAll('/', '.');
}

// Return a copy of node with every $ref replaced by a copy of its target. A $ref back to a
// schema that is being copied (a recursive schema) cannot be inlined. It becomes a $ref to
// "#/definitions/<name>" instead, and its target's pointer goes into cycles, so that the
// caller can put the definitions beside the schema. A $ref in that form stays as it is.
function dereference(doc, node, cycles = new Set(), stack = [], depth = 0) {
    if (depth > 256)
        throw new Error('openapi.yaml nests schemas deeper than 256 levels');
    if (Array.isArray(node))
        return node.map((item) => dereference(doc, item, cycles, stack, depth + 1));
    if (node === null || typeof node !== 'object')
        return node;
    if (typeof node.$ref === 'string') {
        if (node.$ref.startsWith(DEFINITIONS)) {
            cycles.add(`#/${node.$ref.slice(DEFINITIONS.length).replaceAll('.', '/')}`);
            return { ...node };
        }
        if (stack.includes(node.$ref)) {
            cycles.add(node.$ref);
            return { $ref: `${DEFINITIONS}${definitionName(node.$ref)}` };
        }
        return dereference(doc, resolvePointer(doc, node.$ref), cycles, [...stack, node.$ref],
                           depth + 1);
    }
    const out = {};
    for (const [key, value] of Object.entries(node))
        out[key] = dereference(doc, value, cycles, stack, depth + 1);
    return out;
}

function isObjectSchema(schema) {
    return schema !== null && typeof schema === 'object' &&
        (schema.type === 'object' || schema.properties !== undefined);
}

// Merge an allOf of object schemas into one object schema; leave other schemas as they are.
function mergeAllOf(schema) {
    if (!Array.isArray(schema.allOf) || !schema.allOf.every(isObjectSchema))
        return schema;
    const { allOf, ...rest } = schema;
    const merged = { ...rest, type: 'object', properties: {}, required: [] };
    for (const part of allOf.map(mergeAllOf)) {
        Object.assign(merged.properties, part.properties ?? {});
        merged.required.push(...(part.required ?? []));
        if (part.additionalProperties !== undefined)
            merged.additionalProperties = part.additionalProperties;
    }
    merged.required = [...new Set(merged.required)];
    if (merged.required.length === 0)
        delete merged.required;
    return merged;
}

// Return a copy of a dereferenced schema with allOf merged and every object schema closed.
export function closeSchema(schema) {
    if (Array.isArray(schema))
        return schema.map(closeSchema);
    if (schema === null || typeof schema !== 'object')
        return schema;
    const merged = mergeAllOf(schema);
    const out = {};
    for (const [key, value] of Object.entries(merged)) {
        if (key === 'properties') {
            out.properties = {};
            for (const [name, sub] of Object.entries(value))
                out.properties[name] = closeSchema(sub);
        } else if (key === 'example' || key === 'enum' || key === 'default') {
            out[key] = value;
        } else {
            out[key] = closeSchema(value);
        }
    }
    if (isObjectSchema(out) && out.additionalProperties === undefined)
        out.additionalProperties = false;
    return out;
}

// The media type of a Content-Type header value, without parameters, in lower case.
export function mediaType(contentType) {
    return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

function isJson(media) {
    return media === 'application/json' || media.endsWith('+json');
}

export class Contract {
    constructor(path) {
        this.text = readFileSync(path, 'utf8');
        this.doc = YAML.parse(this.text);
        this.ajv = new Ajv({ strict: true, allErrors: true, keywords: ['example'] });
        addFormats(this.ajv);
        this.validators = new Map();
        this.operations = [];
        for (const [path, item] of Object.entries(this.doc.paths ?? {})) {
            for (const method of METHODS) {
                if (item[method] !== undefined)
                    this.operations.push({ key: `${method.toUpperCase()} ${path}`, path, method,
                                           op: item[method] });
            }
        }
    }

    operation(key) {
        const found = this.operations.find((o) => o.key === key);
        if (found === undefined)
            throw new Error(`openapi.yaml has no operation ${key}`);
        return found;
    }

    // The operations of one path, such as "/v1/profiles/{id}".
    operationsOfPath(path) {
        return this.operations.filter((o) => o.path === path);
    }

    // The documented response of an operation for a status, with references resolved, or
    // undefined when the operation does not list it.
    response(key, status) {
        const { op } = this.operation(key);
        const raw = op.responses?.[String(status)] ?? op.responses?.[`${String(status)[0]}XX`] ??
            op.responses?.default;
        return raw === undefined ? undefined : dereference(this.doc, raw);
    }

    // The statuses an operation documents, as strings.
    statuses(key) {
        return Object.keys(this.operation(key).op.responses ?? {});
    }

    // True when the operation accepts a bearer token, so that a server with tokens
    // configured returns 401 to a request without one.
    needsToken(key) {
        const security = this.operation(key).op.security ?? this.doc.security ?? [];
        return security.some((requirement) => Object.keys(requirement).length > 0);
    }

    // The security scheme names an operation accepts.
    schemes(key) {
        const security = this.operation(key).op.security ?? this.doc.security ?? [];
        return security.flatMap((requirement) => Object.keys(requirement));
    }

    // A schema of the document as one closed JSON Schema: references inlined, and each
    // recursive schema that it uses under "definitions".
    standalone(schema) {
        const cycles = new Set();
        const root = closeSchema(dereference(this.doc, schema, cycles));
        const definitions = {};
        // A definition may itself lead to further recursive schemas.
        for (let added = true; added;) {
            added = false;
            for (const ref of [...cycles]) {
                const name = definitionName(ref);
                if (definitions[name] !== undefined)
                    continue;
                definitions[name] = closeSchema(dereference(this.doc, resolvePointer(this.doc, ref),
                                                            cycles, [ref]));
                added = true;
            }
        }
        return Object.keys(definitions).length === 0 ? root : { ...root, definitions };
    }

    // The compiled validator of a schema, cached under schemaId. A schema Ajv cannot
    // compile yields a validator that always fails with Ajv's message.
    validator(schemaId, schema) {
        let validate = this.validators.get(schemaId);
        if (validate === undefined) {
            try {
                validate = this.ajv.compile(this.standalone(schema));
            } catch (err) {
                const message = `the schema does not compile: ${err.message}`;
                validate = () => {
                    validate.errors = [{ instancePath: '', message }];
                    return false;
                };
            }
            this.validators.set(schemaId, validate);
        }
        return validate;
    }

    // Check one response against the operation key. Returns a list of problems, empty when
    // the response conforms. res: {status, headers (lower-case names), body (string)},
    // method: the request's method (HEAD responses have no body).
    check(key, res, method) {
        const documented = this.response(key, res.status);
        if (documented === undefined)
            return [`status ${res.status} is not documented for ${key}`];
        return this.checkAgainst(`${key} ${res.status}`, documented, res, method);
    }

    // Check a response against a response object of components.responses, by name.
    checkComponent(name, res, method) {
        const raw = this.doc.components?.responses?.[name];
        if (raw === undefined)
            return [`openapi.yaml has no response ${name} in components`];
        return this.checkAgainst(`components ${name}`, dereference(this.doc, raw), res, method);
    }

    // Check a response against a dereferenced response object; id names its validators.
    checkAgainst(id, documented, res, method) {
        const problems = [];
        for (const [name, header] of Object.entries(documented.headers ?? {})) {
            const value = res.headers[name.toLowerCase()];
            if (value === undefined) {
                if (header.required)
                    problems.push(`required header ${name} is missing`);
                continue;
            }
            const schema = header.schema ?? {};
            const numeric = schema.type === 'integer' || schema.type === 'number';
            const typed = numeric && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
            const validate = this.validator(`${id} header ${name}`, schema);
            if (!validate(typed))
                problems.push(`header ${name}: ${value}: ${this.ajv.errorsText(validate.errors)}`);
        }

        const content = documented.content;
        if (content === undefined) {
            if (res.body.length > 0)
                problems.push(`no body is documented, but ${res.body.length} bytes came`);
            return problems;
        }
        const media = mediaType(res.headers['content-type']);
        const entry = content[media];
        if (entry === undefined) {
            problems.push(`Content-Type ${res.headers['content-type']} is not one of the ` +
                          `documented ${Object.keys(content).join(', ')}`);
            return problems;
        }
        if (method === 'HEAD' || entry.schema === undefined)
            return problems;
        let body = res.body;
        if (isJson(media)) {
            try {
                body = JSON.parse(res.body);
            } catch (err) {
                problems.push(`the body is not valid JSON: ${err.message}`);
                return problems;
            }
        }
        const validate = this.validator(`${id} ${media}`, entry.schema);
        if (!validate(body)) {
            for (const error of validate.errors) {
                const extra = error.params?.additionalProperty;
                problems.push(`body${error.instancePath} ${error.message}` +
                              (extra ? ` (${extra})` : ''));
            }
        }
        return problems;
    }
}
