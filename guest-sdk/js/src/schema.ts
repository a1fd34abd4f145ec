// Checks a call's input against the JSON Schema its handler declares, and fills in
// `default`s, so a handler sees the input it declared or the call is an invalid-input
// error naming the field (as serde does for the Rust SDK). Covers the keywords a
// connector's input schemas use: type, properties, required, additionalProperties,
// items, enum, const, anyOf/oneOf, minimum/maximum, minLength/maxLength, default.

export type JsonSchema = Record<string, unknown>;

type Problem = { path: string; message: string };

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function matchesType(value: unknown, type: string): boolean {
  const actual = typeOf(value);
  return actual === type || (type === 'number' && actual === 'integer');
}

function join(path: string, key: string | number): string {
  return path === '' ? String(key) : typeof key === 'number' ? `${path}[${key}]` : `${path}.${key}`;
}

function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

/** Checks `value` against `schema`; returns the value with defaults filled in. */
function check(schema: JsonSchema, value: unknown, path: string, problems: Problem[]): unknown {
  const before = problems.length;
  const alternatives = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (alternatives) {
    let result: unknown = value;
    const matched = alternatives.some((alternative) => {
      const attempt: Problem[] = [];
      const checked = check(alternative, value, path, attempt);
      if (attempt.length === 0) {
        result = checked;
        return true;
      }
      return false;
    });
    if (!matched) {
      problems.push({ path, message: `${JSON.stringify(value)} matches none of the allowed shapes` });
      return value;
    }
    value = result;
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((t) => matchesType(value, t))) {
      problems.push({ path, message: `expected ${types.join(' or ')}, found ${typeOf(value)}` });
      return value;
    }
  }
  if (schema.enum && !(schema.enum as unknown[]).some((v) => JSON.stringify(v) === JSON.stringify(value))) {
    problems.push({ path, message: `${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}` });
  }
  if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(value)) {
    problems.push({ path, message: `must be ${JSON.stringify(schema.const)}` });
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) {
      problems.push({ path, message: `must be at least ${schema.minimum}` });
    }
    if (typeof schema.maximum === 'number' && value > schema.maximum) {
      problems.push({ path, message: `must be at most ${schema.maximum}` });
    }
  }
  if (typeof value === 'string') {
    const length = Array.from(value).length;
    if (typeof schema.minLength === 'number' && length < schema.minLength) {
      problems.push({ path, message: `must be at least ${schema.minLength} characters long` });
    }
    if (typeof schema.maxLength === 'number' && length > schema.maxLength) {
      problems.push({ path, message: `must be at most ${schema.maxLength} characters long` });
    }
  }
  if (Array.isArray(value) && schema.items && typeof schema.items === 'object') {
    value = value.map((item, i) => check(schema.items as JsonSchema, item, join(path, i), problems));
  }
  if (typeOf(value) === 'object') {
    const object = { ...(value as Record<string, unknown>) };
    const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
    for (const key of (schema.required ?? []) as string[]) {
      if (!(key in object)) {
        problems.push({ path: join(path, key), message: 'missing field' });
      }
    }
    for (const [key, property] of Object.entries(properties)) {
      if (key in object) {
        object[key] = check(property, object[key], join(path, key), problems);
      } else if ('default' in property) {
        object[key] = clone(property.default);
      }
    }
    if (schema.additionalProperties === false) {
      for (const key of Object.keys(object)) {
        if (!(key in properties)) {
          problems.push({ path: join(path, key), message: 'unknown field' });
        }
      }
    } else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
      for (const key of Object.keys(object)) {
        if (!(key in properties)) {
          object[key] = check(schema.additionalProperties as JsonSchema, object[key], join(path, key), problems);
        }
      }
    }
    value = object;
  }
  return problems.length === before ? value : value;
}

/**
 * Checks `value` against `schema`. Returns the value with defaults filled in, or the
 * first problem as a message (``at `ticketId`: missing field``).
 */
export function validate(schema: JsonSchema, value: unknown): { value: unknown } | { problem: string } {
  const problems: Problem[] = [];
  const checked = check(schema, value, '', problems);
  if (problems.length === 0) {
    return { value: checked };
  }
  const first = problems[0];
  return { problem: first.path === '' ? first.message : `at \`${first.path}\`: ${first.message}` };
}
