//! `docs/config.schema.json` and the compiler cannot drift apart. `schema/every-field.json` is a
//! document using every field the schema knows (every filter type included): the compiler
//! accepts it, and the schema knows every field it uses. Then an unknown field is put into each
//! of its objects: the compiler must refuse every one, and where it names the fields it knows
//! there (`is not a known field (known here: …)`) they must be exactly the schema's.
//!
//! Native only: the schema is read from disk.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clickgate_core::config::{Config, ConfigError, Secrets, StoredLists};
use clickgate_core::ip::parse_list;
use serde_json::{Map, Value};

fn read(path: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn schema() -> Value {
    read("../../docs/config.schema.json")
}

/// The field no schema object knows, put into each object of the document.
const PROBE: &str = "x_not_in_the_schema";

/// Compiles a document as the Worker would, with the one list the fixture keeps in its own key
/// and the Worker secrets it names.
fn compile(doc: &Value) -> Result<Config, Vec<ConfigError>> {
    let mut lists = StoredLists::new();
    lists.insert(
        "iplist/schema-test".to_owned(),
        parse_list("10.0.0.0/8\n").unwrap(),
    );
    let secret = |name: &str| Some(format!("a-worker-secret-named-{name}"));
    Config::compile_with(&doc.to_string(), &lists, Secrets::Read(&secret))
}

/// A schema node with its `$ref` followed.
fn resolve<'s>(schema: &'s Value, node: &'s Value) -> (&'s Value, String) {
    match node["$ref"].as_str() {
        Some(r) => {
            let pointer = r.trim_start_matches('#');
            let target = schema.pointer(pointer).unwrap_or_else(|| panic!("{r}"));
            let (node, _) = resolve(schema, target);
            (node, pointer.to_owned())
        }
        None => (node, String::new()),
    }
}

/// Whether a schema node without properties takes a JSON value of this kind.
fn takes(node: &Value, value: &Value) -> bool {
    if let Some(c) = node.get("const") {
        return c == value;
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    match &node["type"] {
        Value::String(t) => t == kind || (t == "number" && kind == "integer"),
        Value::Array(ts) => ts.iter().any(|t| t == kind),
        _ => node.get("properties").is_some() == (kind == "object"),
    }
}

/// An object of the document and the schema object that describes it.
struct Visit {
    /// The compiler's path of the object (`offers[0].geo`; empty for the document).
    path: String,
    properties: BTreeSet<String>,
}

/// Walks a value and its schema together: every object found is listed with the schema's fields
/// for it, every schema field used is marked, and a field the schema lacks fails the test.
fn walk(
    schema: &Value,
    node: &Value,
    at: &str,
    value: &Value,
    path: &str,
    used: &mut BTreeSet<(String, String)>,
    objects: &mut Vec<Visit>,
) {
    let (node, pointer) = resolve(schema, node);
    let at = if pointer.is_empty() {
        at.to_owned()
    } else {
        pointer
    };
    if let Some(choices) = node["oneOf"].as_array() {
        // The alternative for this value: an object's by its `type` const when it has one.
        let chosen = choices.iter().enumerate().find(|(_, c)| {
            let (c, _) = resolve(schema, c);
            match (c.get("properties"), value) {
                (Some(p), Value::Object(o)) => match (&p["type"]["const"], o.get("type")) {
                    (Value::String(want), Some(got)) => want == got,
                    _ => true,
                },
                (Some(_), _) => false,
                (None, _) => takes(c, value),
            }
        });
        let (i, choice) = chosen.unwrap_or_else(|| panic!("{path}: no alternative takes {value}"));
        return walk(
            schema,
            choice,
            &format!("{at}/oneOf/{i}"),
            value,
            path,
            used,
            objects,
        );
    }
    match value {
        Value::Object(map) if node.get("properties").is_some() => {
            let properties = node["properties"].as_object().unwrap();
            objects.push(Visit {
                path: path.to_owned(),
                properties: properties.keys().cloned().collect(),
            });
            for (key, v) in map {
                let field = properties
                    .get(key)
                    .unwrap_or_else(|| panic!("{path}: the schema has no field `{key}`"));
                used.insert((at.clone(), key.clone()));
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(
                    schema,
                    field,
                    &format!("{at}/properties/{key}"),
                    v,
                    &child,
                    used,
                    objects,
                );
            }
        }
        Value::Array(items) => {
            let item = node
                .get("items")
                .unwrap_or_else(|| panic!("{path}: no items"));
            for (i, v) in items.iter().enumerate() {
                walk(
                    schema,
                    item,
                    &format!("{at}/items"),
                    v,
                    &format!("{path}[{i}]"),
                    used,
                    objects,
                );
            }
        }
        _ => assert!(
            takes(node, value),
            "{path}: the schema does not take {value}"
        ),
    }
}

/// Every (schema object, field) the schema declares, but the objects only `clickgate config
/// push` reads (`x-cli-only`: it rewrites them before the compiler sees the document).
fn declared(node: &Value, at: &str, out: &mut BTreeSet<(String, String)>) {
    match node {
        Value::Object(map) => {
            if map.get("x-cli-only") == Some(&Value::Bool(true)) {
                return;
            }
            if let Some(Value::Object(properties)) = map.get("properties") {
                for key in properties.keys() {
                    out.insert((at.to_owned(), key.clone()));
                }
            }
            for (k, v) in map {
                declared(v, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                declared(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn every_field() -> Value {
    read("tests/schema/every-field.json")
}

#[test]
fn the_compiler_accepts_every_field_the_schema_knows() {
    let schema = schema();
    let doc = every_field();
    if let Err(errors) = compile(&doc) {
        panic!("{errors:#?}");
    }
    let (mut used, mut objects) = (BTreeSet::new(), Vec::new());
    walk(&schema, &schema, "", &doc, "", &mut used, &mut objects);
    let mut all = BTreeSet::new();
    declared(&schema, "", &mut all);
    let unused: Vec<_> = all.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "fields the schema knows that every-field.json does not use: {unused:#?}"
    );
}

#[test]
fn the_compiler_refuses_every_field_the_schema_does_not_know_and_knows_no_other() {
    let schema = schema();
    let mut doc = every_field();
    let (mut used, mut objects) = (BTreeSet::new(), Vec::new());
    walk(&schema, &schema, "", &doc, "", &mut used, &mut objects);
    for o in &objects {
        let target = pointer_of(&o.path);
        let Some(Value::Object(map)) = doc.pointer_mut(&target) else {
            panic!("{}: not found at {target}", o.path);
        };
        map.insert(PROBE.to_owned(), Value::from(1));
    }
    let errors = compile(&doc).expect_err("no unknown field was refused");
    let mut by_path: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in &errors {
        by_path.entry(&e.path).or_default().push(&e.problem);
    }
    for o in &objects {
        let probe = if o.path.is_empty() {
            PROBE.to_owned()
        } else {
            format!("{}.{PROBE}", o.path)
        };
        let problems = by_path.get(probe.as_str()).cloned().unwrap_or_default();
        let known = problems
            .iter()
            .find_map(|p| p.strip_prefix("is not a known field (known here: "));
        match known {
            Some(list) => {
                let compiler: BTreeSet<String> = list
                    .trim_end_matches(')')
                    .split(", ")
                    .map(str::to_owned)
                    .collect();
                assert_eq!(
                    compiler, o.properties,
                    "{}: the compiler's fields (left) and the schema's (right)",
                    o.path
                );
            }
            // An object read whole (a list kept in its own key) refuses the probe its own way.
            None => assert!(
                errors.iter().any(|e| e.path == o.path
                    || e.path.starts_with(&format!("{}.", o.path))
                    || e.path.starts_with(&format!("{}[", o.path))),
                "{}: an unknown field was accepted: {errors:#?}",
                o.path
            ),
        }
    }
}

/// The JSON pointer of a compiler path: `rules[0].strategy.filters[3]` is
/// `/rules/0/strategy/filters/3`.
fn pointer_of(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        out.push('/');
        out.push_str(&pieces.next().unwrap().replace('~', "~0").replace('/', "~1"));
        for index in pieces {
            out.push('/');
            out.push_str(index.trim_end_matches(']'));
        }
    }
    out
}

#[test]
fn the_examples_name_the_schema() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let doc: Map<String, Value> =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(
                doc.get("$schema").and_then(Value::as_str),
                Some("../docs/config.schema.json"),
                "{path:?}"
            );
            let (mut used, mut objects) = (BTreeSet::new(), Vec::new());
            let schema = schema();
            walk(
                &schema,
                &schema,
                "",
                &Value::Object(doc),
                "",
                &mut used,
                &mut objects,
            );
        }
    }
}
