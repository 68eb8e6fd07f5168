//! The JSON Schemas in schemas/: what the config models generate, what `simpul schema`
//! prints, and what every connector file and simpul.toml of the repository satisfies.

use std::path::{Path, PathBuf};

use serde_json::Value;
use simpul::config::schema;

use crate::harness::repo_root;

/// (CLI argument, committed file, generated schema).
fn schemas() -> [(&'static str, &'static str, Value); 2] {
    [
        (
            "connector",
            "schemas/connector.schema.json",
            schema::connector(),
        ),
        ("gateway", "schemas/simpul.schema.json", schema::gateway()),
    ]
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_committed_schemas_are_what_the_config_models_generate() {
    for (arg, file, generated) in schemas() {
        assert!(
            read(&repo_root().join(file)) == schema::text(&generated),
            "{file} differs from the models in src/config; regenerate it with\n  \
             cargo run -q -- schema {arg} > {file}"
        );
    }
}

#[test]
fn simpul_schema_prints_the_committed_schemas() {
    for (arg, file, _) in schemas() {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_simpul"))
            .args(["schema", arg])
            .output()
            .expect("run simpul schema");
        assert!(out.status.success(), "simpul schema {arg}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            read(&repo_root().join(file))
        );
    }
}

/// A TOML file as the JSON value a schema validates.
fn toml_as_json(path: &Path) -> Value {
    let value: toml::Value =
        toml::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::to_value(value).expect("json")
}

/// The problems `schema` finds in `instance`, one line each.
fn problems(schema: &Value, instance: &Value) -> Vec<String> {
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource("schema.json", schema.clone())
        .expect("a schema document");
    let index = compiler
        .compile("schema.json", &mut schemas)
        .expect("a valid schema");
    match schemas.validate(instance, index) {
        Ok(()) => Vec::new(),
        Err(e) => e.to_string().lines().skip(1).map(str::to_string).collect(),
    }
}

/// The files matching `dir/*/rel` (or `dir/rel` when `dir` has no `*`), sorted.
fn each(pattern: &str) -> Vec<PathBuf> {
    let root = repo_root();
    let mut dirs = vec![root.clone()];
    for part in pattern.split('/') {
        let mut next = Vec::new();
        for d in dirs {
            if part == "*" || part.starts_with("*.") {
                let Ok(entries) = std::fs::read_dir(&d) else {
                    continue;
                };
                for e in entries.flatten() {
                    let p = e.path();
                    let ext = part.strip_prefix("*.");
                    if ext.is_none_or(|x| p.extension().is_some_and(|e| e == x)) {
                        next.push(p);
                    }
                }
            } else {
                next.push(d.join(part));
            }
        }
        dirs = next;
    }
    dirs.retain(|p| p.is_file());
    dirs.sort();
    dirs
}

#[test]
fn every_connector_file_and_simpul_toml_in_the_repository_validates() {
    // tests/check/* are broken on purpose and left out.
    let deployments = [
        "",
        "examples/blog/",
        "tests/cases/*/",
        "benches/deployments/*/",
        "tests/fuzz/corpus/deployment/*/",
        "tests/outbox/",
        "tests/uploads/",
    ];
    let mut checked = 0;
    let mut failures = Vec::new();
    for (pattern, schema) in [
        ("connectors/*.toml", schema::connector()),
        ("simpul.toml", schema::gateway()),
    ] {
        for d in deployments {
            for file in each(&format!("{d}{pattern}")) {
                checked += 1;
                for p in problems(&schema, &toml_as_json(&file)) {
                    failures.push(format!("{}: {p}", file.display()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The root's 13 connectors and simpul.toml, the blog, the cases, the benches...
    assert!(checked >= 25, "only {checked} files found");
}

#[test]
fn the_schemas_refuse_what_the_loader_refuses() {
    let connector = schema::connector();
    let refused = |toml: &str| {
        let value: toml::Value = toml::from_str(toml).expect("toml");
        let got = problems(&connector, &serde_json::to_value(value).expect("json"));
        assert!(!got.is_empty(), "accepted:\n{toml}");
    };
    refused("[file]\npath = \"data\"\ncolumns = 3\n");
    refused("[file]\npath = \"data\"\ndecimal = \"koma\"\n");
    refused("[file]\npath = \"data\"\ndelimiter = \";;\"\n");
    refused("[http]\nbase_url = \"http://x\"\nformat = \"xml\"\n");
    refused("timeout = 5\n[http]\nbase_url = \"http://x\"\n");
    refused("[graphql]\nendpoint = \"http://x\"\n");
    // And accept it written right, env references included.
    let value: toml::Value = toml::from_str(
        "timeout = \"2s\"\n[file]\npath = \"${env.DATA_DIR:-data}/harga.csv\"\ndelimiter = \";\"\ndecimal = \",\"\n[cache]\nttl = \"1h\"\n",
    )
    .expect("toml");
    assert_eq!(
        problems(&connector, &serde_json::to_value(value).expect("json")),
        Vec::<String>::new()
    );
    let gateway = schema::gateway();
    let value: toml::Value =
        toml::from_str("[limits]\nmax_complexity = 100\n[cache]\nmax_memory = \"16MiB\"\n")
            .expect("toml");
    assert_eq!(
        problems(&gateway, &serde_json::to_value(value).expect("json")),
        Vec::<String>::new()
    );
}
