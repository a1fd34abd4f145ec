//! `docs/openapi.yaml` kept honest, without mocks:
//!
//! 1. the document is well-formed: OpenAPI 3.1, every `$ref` resolves, every operation
//!    has an `operationId` (unique) and responses with valid status codes, and every
//!    path template parameter is declared;
//! 2. every documented operation is answered by a real route of a real `sluice serve`
//!    (neither the router's fallback 404 nor 405), with a status the document lists
//!    for it, and needs the API key exactly when the document says so;
//! 3. every route the code registers (read from the `.route(...)` calls in
//!    `host/src/api/*.rs`, with the `/v1` nesting resolved) is documented, and every
//!    documented route is registered.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::Server;

/// The methods an OpenAPI path item can hold, lower-case as the document spells them.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The body of the router's fallback, answered for a path no route matches.
fn fallback_body() -> Value {
    json!({"error": {"code": "not-found", "message": "route not found"}})
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the host crate is inside the workspace")
        .to_path_buf()
}

const DOCUMENT: &str = "docs/openapi.yaml";

fn document() -> Value {
    let path = repo_root().join(DOCUMENT);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|err| panic!("{DOCUMENT} is not YAML: {err}"))
}

/// One operation of the document.
struct Operation<'a> {
    path: &'a str,
    method: &'a str,
    /// The path item, for its path-level parameters.
    item: &'a Value,
    operation: &'a Value,
}

impl Operation<'_> {
    fn name(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.path)
    }
}

fn operations(doc: &Value) -> Vec<Operation<'_>> {
    let paths = doc["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("{DOCUMENT} has no `paths` object"));
    let mut found = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                found.push(Operation {
                    path,
                    method,
                    item,
                    operation,
                });
            }
        }
    }
    found
}

/// Follows a local `$ref` (once per level, until the value is not a reference).
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> Option<&'a Value> {
    let mut current = value;
    for _ in 0..16 {
        match current.get("$ref").and_then(Value::as_str) {
            None => return Some(current),
            Some(reference) => current = doc.pointer(reference.strip_prefix('#')?)?,
        }
    }
    None
}

/// Every `$ref` in `value`, with where it is (a JSON pointer).
fn refs<'a>(value: &'a Value, at: &str, found: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (key.as_str(), child) {
                    ("$ref", Value::String(reference)) => found.push((here, reference)),
                    _ => refs(child, &here, found),
                }
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                refs(child, &format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

/// JSON pointers of the `null` values of `value`, except inside `example`, `default`,
/// `const` and `enum`.
fn nulls_in(value: &Value, at: &str, found: &mut Vec<String>) {
    match value {
        Value::Null => found.push(at.to_string()),
        Value::Object(map) => {
            for (key, child) in map {
                if !["example", "examples", "default", "const", "enum"].contains(&key.as_str()) {
                    nulls_in(child, &format!("{at}/{key}"), found);
                }
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                nulls_in(child, &format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

/// The `{name}`s of a path template.
fn template_names(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_string)
        .collect()
}

/// The parameters of an operation (path-level ones included), resolved.
fn parameters<'a>(doc: &'a Value, op: &Operation<'a>) -> Vec<&'a Value> {
    [op.item.get("parameters"), op.operation.get("parameters")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|parameter| resolve(doc, parameter))
        .collect()
}

fn is_status_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    key == "default"
        || (bytes.len() == 3
            && (b'1'..=b'5').contains(&bytes[0])
            && ((bytes[1..].iter().all(u8::is_ascii_digit)) || &bytes[1..] == b"XX"))
}

/// Whether the operation is public: `security: []` on it (else the document's
/// top-level requirement applies).
fn is_public(doc: &Value, operation: &Value) -> bool {
    let security = operation.get("security").unwrap_or(&doc["security"]);
    security.as_array().is_none_or(Vec::is_empty)
}

#[test]
fn the_document_is_well_formed() {
    let doc = document();
    let mut problems = Vec::new();

    if !doc["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1."))
    {
        problems.push(format!("`openapi` is {}, not 3.1.x", doc["openapi"]));
    }
    for field in ["title", "version"] {
        if !doc["info"][field].is_string() {
            problems.push(format!("`info.{field}` is missing"));
        }
    }

    let mut found = Vec::new();
    refs(&doc, "", &mut found);
    assert!(!found.is_empty(), "the document uses no `$ref` at all?");
    for (at, reference) in &found {
        let target = reference
            .strip_prefix('#')
            .filter(|pointer| pointer.starts_with('/'));
        match target {
            None => problems.push(format!(
                "`$ref: {reference}` at {at} is not a local reference (`#/...`)"
            )),
            Some(pointer) if doc.pointer(pointer).is_none() => problems.push(format!(
                "`$ref: {reference}` at {at} points at nothing in {DOCUMENT}"
            )),
            Some(_) => {}
        }
    }

    // OpenAPI has no use for `null` outside examples, defaults, constants and enums; a
    // null elsewhere is usually a flow mapping split at a comma (`{description: a, b}`
    // is `{description: a, b: null}`).
    let mut nulls = Vec::new();
    nulls_in(&doc, "", &mut nulls);
    for at in nulls {
        problems.push(format!(
            "`null` at {at}: quote the text before it if it contains a comma"
        ));
    }

    let schemes = &doc["components"]["securitySchemes"];
    let requirements = std::iter::once(&doc["security"]).chain(
        operations(&doc)
            .into_iter()
            .filter_map(|op| op.operation.get("security")),
    );
    for requirement in requirements.filter_map(Value::as_array).flatten() {
        for name in requirement.as_object().into_iter().flat_map(|r| r.keys()) {
            if schemes.get(name).is_none() {
                problems.push(format!(
                    "security requirement `{name}` names no `components.securitySchemes` entry"
                ));
            }
        }
    }
    if doc["security"].as_array().is_none_or(Vec::is_empty) {
        problems.push("no top-level `security`: the API key would be documented nowhere".into());
    }

    let operations = operations(&doc);
    assert!(!operations.is_empty(), "{DOCUMENT} documents no operation");
    let mut ids = BTreeMap::new();
    for op in &operations {
        let name = op.name();
        match op.operation["operationId"].as_str() {
            None => problems.push(format!("{name}: no `operationId`")),
            Some(id) => {
                if let Some(other) = ids.insert(id.to_string(), name.clone()) {
                    problems.push(format!("{name}: `operationId` {id} is also {other}'s"));
                }
            }
        }
        match op.operation["responses"].as_object() {
            None => problems.push(format!("{name}: no `responses`")),
            Some(responses) if responses.is_empty() => {
                problems.push(format!("{name}: `responses` is empty"))
            }
            Some(responses) => {
                for (status, response) in responses {
                    if !is_status_key(status) {
                        problems.push(format!("{name}: `{status}` is not a status code"));
                    }
                    let described = resolve(&doc, response)
                        .is_some_and(|response| response["description"].is_string());
                    if !described {
                        problems.push(format!("{name}: response {status} has no `description`"));
                    }
                }
            }
        }
        let declared: BTreeSet<String> = parameters(&doc, op)
            .into_iter()
            .filter(|parameter| parameter["in"] == "path")
            .filter_map(|parameter| {
                if parameter["required"] != true {
                    problems.push(format!(
                        "{name}: path parameter {} must be `required: true`",
                        parameter["name"]
                    ));
                }
                parameter["name"].as_str().map(str::to_string)
            })
            .collect();
        let template = template_names(op.path);
        for missing in template.difference(&declared) {
            problems.push(format!(
                "{name}: path parameter `{missing}` is not declared"
            ));
        }
        for extra in declared.difference(&template) {
            problems.push(format!(
                "{name}: declares path parameter `{extra}`, which is not in the path"
            ));
        }
    }

    assert!(
        problems.is_empty(),
        "{DOCUMENT} is not well-formed:\n  {}",
        problems.join("\n  ")
    );
}

/// A dummy value for a path parameter: `1` for integers, else `probe`.
fn dummy(doc: &Value, op: &Operation<'_>, name: &str) -> &'static str {
    let integer = parameters(doc, op)
        .into_iter()
        .find(|parameter| parameter["in"] == "path" && parameter["name"] == name)
        .and_then(|parameter| resolve(doc, &parameter["schema"]))
        .is_some_and(|schema| schema["type"] == "integer");
    if integer { "1" } else { "probe" }
}

fn concrete_path(doc: &Value, op: &Operation<'_>) -> String {
    op.path
        .split('/')
        .map(|segment| {
            match segment
                .strip_prefix('{')
                .and_then(|rest| rest.strip_suffix('}'))
            {
                Some(name) => dummy(doc, op, name),
                None => segment,
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A request without a body, with the API key or without; status and parsed body.
async fn probe(server: &Server, key: Option<&str>, method: &str, path: &str) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", server.url));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Whether `status` is one of the documented response keys (exactly or by range;
/// `default` does not count: it documents nothing in particular).
fn documents_status(operation: &Value, status: u16) -> bool {
    let Some(responses) = operation["responses"].as_object() else {
        return false;
    };
    let exact = status.to_string();
    let range = format!("{}XX", status / 100);
    responses.contains_key(&exact) || responses.contains_key(&range)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed() {
    let doc = document();
    let server = Server::start();
    let client = server.tenant("T");
    let key = Some(client.key.as_str());

    // The two answers this test tells apart from a route's must look as expected, or
    // the checks below prove nothing.
    let (status, body) = probe(&server, key, "get", "/v1/no-such-route").await;
    assert_eq!(
        (status, &body),
        (404, &fallback_body()),
        "an unrouted path no longer answers the fallback this test looks for"
    );
    let (status, _) = probe(&server, key, "put", "/v1/health").await;
    assert_eq!(status, 405, "an unrouted method no longer answers 405");

    let mut problems = Vec::new();
    for op in operations(&doc) {
        let name = op.name();
        let path = concrete_path(&doc, &op);
        let (status, body) = probe(&server, key, op.method, &path).await;
        if status == 405 {
            problems.push(format!(
                "{name}: documented, but the router answers {} {path} with 405 Method Not Allowed",
                op.method.to_uppercase()
            ));
            continue;
        }
        if status == 404 && body == fallback_body() && op.method != "head" {
            problems.push(format!(
                "{name}: documented, but no route matches {} {path} (the router's fallback answered)",
                op.method.to_uppercase()
            ));
            continue;
        }
        if !documents_status(op.operation, status) {
            problems.push(format!(
                "{name}: {} {path} answered {status} ({body}), a status its `responses` do not list",
                op.method.to_uppercase()
            ));
        }

        // Without the API key: 401 exactly when the document says the key is needed.
        let (anonymous, body) = probe(&server, None, op.method, &path).await;
        let public = is_public(&doc, op.operation);
        if public && anonymous == 401 {
            problems.push(format!(
                "{name}: documented as public (`security: []`), but answers 401 without an API key: {body}"
            ));
        }
        if !public && anonymous != 401 {
            problems.push(format!(
                "{name}: documented as needing the API key, but answers {anonymous} without one"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{DOCUMENT} documents operations the server does not serve as documented:\n  {}",
        problems.join("\n  ")
    );
}

/// The methods a registered route serves.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Methods {
    /// `any(...)`: every method.
    Any,
    Some(BTreeSet<String>),
}

/// A route the code registers: full path (OpenAPI template syntax), its methods, and
/// the files that register it.
type CodeRoutes = BTreeMap<String, (Methods, BTreeSet<String>)>;

/// Drops `//` comments (outside string literals) and everything from `#[cfg(test)]`
/// on (unit tests sit at the end of a module and register no routes of the server).
fn code_only(source: &str) -> String {
    let source = source.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '/' && chars.peek() == Some(&'/') {
            for rest in chars.by_ref() {
                if rest == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

/// A cursor over source text for the small grammar of route registrations.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, token: char) -> bool {
        self.skip_space();
        if self.rest().starts_with(token) {
            self.at += token.len_utf8();
            true
        } else {
            false
        }
    }

    fn string(&mut self) -> Option<&'a str> {
        self.skip_space();
        let rest = self.rest().strip_prefix('"')?;
        let end = rest.find('"')?;
        self.at += end + 2;
        Some(&rest[..end])
    }

    fn ident(&mut self) -> Option<&'a str> {
        self.skip_space();
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        (end > 0).then(|| {
            self.at += end;
            &rest[..end]
        })
    }

    /// Skips a parenthesized group whose `(` was just eaten.
    fn skip_group(&mut self) -> Option<()> {
        let mut depth = 1;
        let mut in_string = false;
        let mut chars = self.rest().char_indices();
        while let Some((index, c)) = chars.next() {
            match (in_string, c) {
                (true, '\\') => {
                    chars.next();
                }
                (true, '"') | (false, '"') => in_string = !in_string,
                (false, '(') => depth += 1,
                (false, ')') => {
                    depth -= 1;
                    if depth == 0 {
                        self.at += index + 1;
                        return Some(());
                    }
                }
                _ => {}
            }
        }
        None
    }
}

/// Parses the method-router chain of `.route("<path>", <chain>)` after its path:
/// `get(h)`, `get(h).post(h2)`, `any(h)`.
fn method_chain(cursor: &mut Cursor<'_>) -> Result<Methods, String> {
    let mut methods = BTreeSet::new();
    let mut any = false;
    loop {
        let ident = cursor
            .ident()
            .ok_or("expected a method router, e.g. `get(...)`")?;
        if !cursor.eat('(') || cursor.skip_group().is_none() {
            return Err(format!("`{ident}` is not followed by `(...)`"));
        }
        match ident {
            "any" => any = true,
            method if METHODS.contains(&method) => {
                methods.insert(method.to_string());
            }
            other => {
                return Err(format!(
                    "`{other}(...)` is not a method router this test understands (get, post, \
                     put, patch, delete, head, options, trace, any)"
                ));
            }
        }
        if !cursor.eat('.') {
            break;
        }
    }
    cursor.eat(',');
    if !cursor.eat(')') {
        return Err("expected `)` closing `.route(`".into());
    }
    match (any, methods.is_empty()) {
        (true, true) => Ok(Methods::Any),
        (true, false) => Err("mixes `any(...)` with other methods".into()),
        (false, _) => Ok(Methods::Some(methods)),
    }
}

/// Every `.route("<path>", <chain>)` of `code`, as (path as written, methods).
fn routes_in(code: &str, file: &str) -> Vec<(String, Methods)> {
    let mut found = Vec::new();
    for (index, _) in code.match_indices(".route(") {
        let mut cursor = Cursor {
            text: code,
            at: index + ".route(".len(),
        };
        let path = cursor.string().unwrap_or_else(|| {
            panic!("{file}: a `.route(` whose first argument is not a string literal path")
        });
        if !cursor.eat(',') {
            panic!("{file}: `.route(\"{path}\"` is not followed by `,`");
        }
        let methods = method_chain(&mut cursor)
            .unwrap_or_else(|err| panic!("{file}: `.route(\"{path}\", ...)`: {err}"));
        found.push((path.to_string(), methods));
    }
    found
}

/// axum path syntax to OpenAPI's: `{*rest}` (a wildcard) is `{rest}`.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// The body of `fn <name>(...)`: the text between its outermost braces.
fn fn_body<'a>(code: &'a str, name: &str, file: &str) -> &'a str {
    let start = code
        .find(&format!("fn {name}("))
        .unwrap_or_else(|| panic!("{file} has no `fn {name}(`"));
    let open = start + code[start..].find('{').expect("a function body");
    let mut depth = 0;
    for (index, c) in code[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &code[open + 1..open + index];
                }
            }
            _ => {}
        }
    }
    panic!("{file}: unbalanced braces in `fn {name}`")
}

/// The router expressions of `api::router`: each `let <name> = ...;` and the tail
/// expression (named `""`), split at top-level `;`.
fn router_expressions(body: &str) -> Vec<(String, &str)> {
    let mut expressions = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (index, c) in body.char_indices() {
        match c {
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            ';' if depth == 0 => {
                expressions.push(&body[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    expressions.push(&body[start..]);
    expressions
        .into_iter()
        .filter(|text| !text.trim().is_empty())
        .map(|text| {
            let text = text.trim();
            match text.strip_prefix("let ") {
                Some(rest) => {
                    let (name, value) = rest.split_once('=').expect("`let <name> = <value>`");
                    (name.trim().trim_start_matches("mut ").to_string(), value)
                }
                None => (String::new(), text),
            }
        })
        .collect()
}

/// `.merge(<module>::routes(` calls: the modules merged into a router expression.
fn merged_modules(expression: &str) -> Vec<String> {
    expression
        .match_indices(".merge(")
        .filter_map(|(index, _)| {
            let rest = expression[index + ".merge(".len()..].trim_start();
            let (module, after) = rest.split_once("::")?;
            after
                .starts_with("routes(")
                .then(|| module.trim().to_string())
        })
        .collect()
}

/// `.nest("<prefix>", <router>)` calls of a router expression.
fn nests(expression: &str, file: &str) -> Vec<(String, String)> {
    expression
        .match_indices(".nest(")
        .map(|(index, _)| {
            let mut cursor = Cursor {
                text: expression,
                at: index + ".nest(".len(),
            };
            let prefix = cursor.string();
            let comma = cursor.eat(',');
            let router = cursor.ident();
            match (prefix, comma, router, cursor.eat(')')) {
                (Some(prefix), true, Some(router), true) => {
                    (prefix.to_string(), router.to_string())
                }
                _ => panic!(
                    "{file}: a `.nest(` this test cannot follow (expected `.nest(\"/prefix\", \
                     router_variable)`)"
                ),
            }
        })
        .collect()
}

/// Every route `api::router` registers, read from the source of `host/src/api`.
fn code_routes() -> CodeRoutes {
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut sources = BTreeMap::new();
    for entry in std::fs::read_dir(&api).expect("host/src/api") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            let module = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("a source file");
            sources.insert(module, text);
        }
    }
    routes_of(&sources)
}

/// The routes of `api::router` given the source of each module of `api` (by module
/// name; `mod` is mod.rs).
fn routes_of(sources: &BTreeMap<String, String>) -> CodeRoutes {
    let sources: BTreeMap<&String, String> = sources
        .iter()
        .map(|(module, text)| (module, code_only(text)))
        .collect();
    let file = |module: &str| format!("host/src/api/{module}.rs");
    let root = sources
        .get(&"mod".to_string())
        .expect("host/src/api/mod.rs");
    for unsupported in [".route_service(", ".nest_service("] {
        for (module, code) in &sources {
            assert!(
                !code.contains(unsupported),
                "{}: `{unsupported}` registers routes this test cannot see; extend the test",
                file(module)
            );
        }
    }

    // Where each router expression of `api::router` is mounted: the tail at `/`, a
    // router nested into a mounted one at the nest's prefix.
    let expressions = router_expressions(fn_body(root, "router", &file("mod")));
    let mut prefixes: BTreeMap<String, String> = BTreeMap::from([(String::new(), String::new())]);
    loop {
        let mut changed = false;
        for (name, expression) in &expressions {
            let Some(prefix) = prefixes.get(name).cloned() else {
                continue;
            };
            for (nest, router) in nests(expression, &file("mod")) {
                if let std::collections::btree_map::Entry::Vacant(entry) = prefixes.entry(router) {
                    entry.insert(format!("{prefix}{nest}"));
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }

    let mut routes = CodeRoutes::new();
    let mut add = |path: String, methods: Methods, file: String| {
        let entry = routes
            .entry(openapi_path(&path))
            .or_insert_with(|| (Methods::Some(BTreeSet::new()), BTreeSet::new()));
        entry.0 = match (&entry.0, methods) {
            (Methods::Some(old), Methods::Some(new)) => {
                Methods::Some(old.union(&new).cloned().collect())
            }
            (Methods::Some(old), Methods::Any) if old.is_empty() => Methods::Any,
            _ => panic!("{file}: route {path} is registered twice with `any`"),
        };
        entry.1.insert(file);
    };
    let mut placed = BTreeSet::new();
    for (name, expression) in &expressions {
        let prefix = prefixes.get(name).unwrap_or_else(|| {
            panic!(
                "{}: router `{name}` is not nested into the router `api::router` returns; \
                 this test cannot tell where its routes are mounted",
                file("mod")
            )
        });
        for (path, methods) in routes_in(expression, &file("mod")) {
            add(format!("{prefix}{path}"), methods, file("mod"));
        }
        for module in merged_modules(expression) {
            let code = sources.get(&module).unwrap_or_else(|| {
                panic!(
                    "{}: merges `{module}::routes`, but there is no {}",
                    file("mod"),
                    file(&module)
                )
            });
            assert!(
                placed.insert(module.clone()),
                "{}: `{module}::routes` is merged twice",
                file("mod")
            );
            assert!(
                !code.contains(".nest("),
                "{}: nests a router; this test only follows `.nest` in mod.rs",
                file(&module)
            );
            for (path, methods) in routes_in(code, &file(&module)) {
                add(format!("{prefix}{path}"), methods, file(&module));
            }
        }
    }
    for (module, code) in &sources {
        if *module != "mod" && !placed.contains(*module) && code.contains(".route(") {
            panic!(
                "{} registers routes, but mod.rs merges `{module}::routes` into no router; \
                 this test cannot tell where they are mounted",
                file(module)
            );
        }
    }
    routes
}

#[test]
fn every_route_in_the_code_is_documented_and_the_reverse() {
    let routes = code_routes();
    assert!(
        routes.contains_key("/v1/health")
            && routes.keys().any(|path| path.starts_with("/webhooks/")),
        "the source scan found too little to be trusted: {routes:?}"
    );
    let doc = document();
    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for op in operations(&doc) {
        documented
            .entry(op.path.to_string())
            .or_default()
            .insert(op.method.to_string());
    }

    let mut problems = Vec::new();
    for (path, (methods, files)) in &routes {
        let files = files.iter().cloned().collect::<Vec<_>>().join(", ");
        let in_doc = documented.get(path);
        match methods {
            Methods::Any => {
                if in_doc.is_none_or(BTreeSet::is_empty) {
                    problems.push(format!(
                        "undocumented route: {path} (any method, registered in {files}): \
                         add the path with its methods to {DOCUMENT}"
                    ));
                }
            }
            Methods::Some(methods) => {
                for method in methods {
                    if !in_doc.is_some_and(|doc_methods| doc_methods.contains(method)) {
                        problems.push(format!(
                            "undocumented route: {} {path} (registered in {files}): add it to {DOCUMENT}",
                            method.to_uppercase()
                        ));
                    }
                }
            }
        }
    }
    for (path, methods) in &documented {
        for method in methods {
            let routed = match routes.get(path) {
                None => false,
                Some((Methods::Any, _)) => true,
                Some((Methods::Some(code_methods), _)) => code_methods.contains(method),
            };
            if !routed {
                problems.push(format!(
                    "documented route missing from the router: {} {path} ({DOCUMENT} \
                     `paths.{path}.{method}`): no `.route(...)` in host/src/api registers it",
                    method.to_uppercase()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{DOCUMENT} and the router disagree:\n  {}",
        problems.join("\n  ")
    );
}

/// The source scan on a made-up `api` module set: routes in comments and unit tests
/// are ignored, multi-line and chained registrations are read, nesting resolves, and
/// forms the scan cannot follow are refused rather than skipped.
#[test]
fn the_route_scan_reads_the_forms_the_router_uses() {
    let sources = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(module, text)| (module.to_string(), text.to_string()))
            .collect()
    };
    let root = r#"
        pub fn router(state: AppState) -> Router {
            let v1 = Router::new()
                .route("/health", get(health))
                // .route("/commented", get(nothing))
                .merge(things::routes())
                .layer(Limit::max(state.limit));
            Router::new()
                .nest("/v1", v1)
                .merge(hooks::routes(state.config.limit))
                .fallback(|| async { ApiError::not_found("route") })
                .with_state(state)
        }
    "#;
    let things = r#"
        pub fn routes() -> Router<AppState> {
            Router::new()
                .route("/things", get(list).post(create)) // "a string, // not a comment"
                .route(
                    "/things/{id}/versions/{version}",
                    get(fetch).delete(remove),
                )
        }
        #[cfg(test)]
        mod tests { fn t() { Router::new().route("/test-only", get(x)); } }
    "#;
    let hooks = r#"
        pub fn routes(limit: usize) -> Router<AppState> {
            Router::new()
                .route("/hooks/{token}", any(root))
                .route("/hooks/{token}/{*path}", any(with_path))
        }
    "#;
    let routes = routes_of(&sources(&[
        ("mod", root),
        ("things", things),
        ("hooks", hooks),
    ]));
    let methods = |list: &[&str]| Methods::Some(list.iter().map(|m| m.to_string()).collect());
    let found: BTreeMap<&str, &Methods> = routes
        .iter()
        .map(|(path, (methods, _))| (path.as_str(), methods))
        .collect();
    assert_eq!(
        found,
        BTreeMap::from([
            ("/v1/health", &methods(&["get"])),
            ("/v1/things", &methods(&["get", "post"])),
            (
                "/v1/things/{id}/versions/{version}",
                &methods(&["delete", "get"])
            ),
            ("/hooks/{token}", &Methods::Any),
            ("/hooks/{token}/{path}", &Methods::Any),
        ])
    );

    let refused = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(module, text)| (module.to_string(), text.to_string()))
            .collect();
        std::panic::catch_unwind(move || {
            routes_of(&pairs.into_iter().collect());
        })
        .is_err()
    };
    let unknown_method =
        r#"pub fn routes() -> Router { Router::new().route("/x", on(filter, h)) }"#;
    assert!(refused(&[
        ("mod", root),
        ("things", unknown_method),
        ("hooks", hooks)
    ]));
    let unmerged = r#"pub fn routes() -> Router { Router::new().route("/x", get(h)) }"#;
    assert!(refused(&[
        ("mod", root),
        ("things", things),
        ("hooks", hooks),
        ("stray", unmerged)
    ]));
    let service = r#"pub fn routes() -> Router { Router::new().route_service("/x", svc) }"#;
    assert!(refused(&[
        ("mod", root),
        ("things", service),
        ("hooks", hooks)
    ]));
}
