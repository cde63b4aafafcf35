//! `docs/openapi.json` describes exactly the routes the Worker serves: clickgate's own paths
//! outside `/admin/` ([`PUBLIC_ROUTES`], which the edge dispatches by) and the admin API's
//! ([`admin::ROUTES`]), each with the methods it takes. The admin table is itself held to the
//! admin API's reader: each route answers its methods and names them when refused another, and
//! paths beside them are no routes.
//!
//! Native only: the document is read from disk.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clickgate_core::admin::{self, AdminCall, AdminError};
use clickgate_core::click::PUBLIC_ROUTES;
use serde_json::Value;

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| METHODS.contains(&k.to_uppercase().as_str()))
                .map(|k| k.to_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

fn methods(list: &str) -> BTreeSet<String> {
    list.split(", ").map(str::to_owned).collect()
}

#[test]
fn the_description_holds_every_route_the_worker_serves_and_no_other() {
    let served: BTreeMap<String, BTreeSet<String>> = PUBLIC_ROUTES
        .iter()
        .chain(admin::ROUTES.iter())
        .map(|(path, list)| ((*path).to_owned(), methods(list)))
        .collect();
    assert_eq!(
        documented(),
        served,
        "docs/openapi.json (left) and the routes served (right)"
    );
}

/// A path of the table with its parameters filled in.
fn concrete(template: &str) -> String {
    template
        .replace("{transaction_id}", "AbC-_1")
        .replace("{network}", "net-7")
}

fn call(method: &str, path: &str) -> Result<admin::AdminRequest, AdminError> {
    const TOKEN: &str = "route-table-admin-token";
    let auth = format!("Bearer {TOKEN}");
    admin::parse(
        AdminCall {
            method,
            path,
            query: "",
            authorization: Some(&auth),
            body: r#"{"by": "route table"}"#,
        },
        Some(TOKEN),
        1_795_392_000_000,
    )
}

#[test]
fn the_admin_route_table_is_what_the_admin_api_reads() {
    for (template, list) in admin::ROUTES {
        let path = concrete(template);
        let takes = methods(list);
        for method in METHODS {
            let got = call(method, &path);
            if takes.contains(method) {
                assert!(
                    !matches!(
                        got,
                        Err(AdminError::NotFound | AdminError::MethodNotAllowed(_))
                    ),
                    "{method} {path}: {got:?}"
                );
            } else {
                assert_eq!(
                    got,
                    Err(AdminError::MethodNotAllowed(list)),
                    "{method} {path}"
                );
            }
        }
    }
    // Paths beside the table's are no routes, whatever the method.
    for path in [
        "/admin/networks",
        "/admin/networks/net-7",
        "/admin/networks/net-7/delete",
        "/admin/config/x",
        "/admin/blocklist/x",
        "/admin/blocklists",
        "/admin/lists",
        "/admin/reports",
    ] {
        for method in METHODS {
            assert_eq!(
                call(method, path),
                Err(AdminError::NotFound),
                "{method} {path}"
            );
        }
    }
}

#[test]
fn the_public_routes_take_the_methods_the_table_gives() {
    use clickgate_core::click::{route, RequestError, HEALTH_PATH, POSTBACK_PATH, REJECTION_PATH};
    use clickgate_core::isolate::PostbackArrival;
    for (template, list) in PUBLIC_ROUTES {
        if template == clickgate_core::click::VERDICT_PATH {
            // Read by the edge (src/postback.rs) with the click's methods, not by `route`.
            continue;
        }
        let path = template
            .replace("{offer}", "1001")
            .replace("{affiliate}", "net-7");
        let takes = methods(list);
        for method in METHODS {
            // A rejection is read by the postback's own reader (src/postback.rs).
            let allowed = if template == POSTBACK_PATH || template == REJECTION_PATH {
                PostbackArrival::read(method, "transaction_id=x", None).is_ok()
            } else {
                let got = route(method, &path, "offer_id=1001&aff_id=net-7");
                if template == HEALTH_PATH && got.is_ok() {
                    assert_eq!(got, Ok(clickgate_core::click::Route::Health));
                }
                !matches!(
                    got,
                    Err(RequestError::MethodNotAllowed { .. } | RequestError::NotFound)
                )
            };
            assert_eq!(allowed, takes.contains(method), "{method} {path}");
        }
    }
}
