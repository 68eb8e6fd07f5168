//! What implementing an interface takes: every field it declares, and a nullable type for
//! one marked `@access` (denied in place, not by losing the object).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{NamedKind, SCHEMA_FILE};
use crate::blueprint::{TypeDef, TypeDefKind};
use crate::diagnostic::Diagnostic;

/// Every object claiming an interface has its fields; unknown interfaces are reported.
pub(super) fn check(
    types: &[TypeDef],
    diags: &mut Vec<Diagnostic>,
    kinds: &HashMap<String, NamedKind>,
) {
    let interfaces: BTreeMap<&str, HashSet<&str>> = types
        .iter()
        .filter_map(|t| match &t.kind {
            TypeDefKind::Interface { fields, .. } => Some((
                t.name.as_str(),
                fields.iter().map(|f| f.name.as_str()).collect(),
            )),
            _ => None,
        })
        .collect();
    for t in types {
        let (TypeDefKind::Object { fields, implements }
        | TypeDefKind::Interface {
            fields, implements, ..
        }) = &t.kind
        else {
            continue;
        };
        for iface in implements {
            if kinds.get(iface) != Some(&NamedKind::Interface) {
                diags.push(Diagnostic::new(
                    SCHEMA_FILE,
                    t.at.0,
                    t.at.1,
                    format!(
                        "type {} implements {iface}, which is not an interface",
                        t.name
                    ),
                ));
                continue;
            }
            let have: HashSet<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            for missing in interfaces
                .get(iface.as_str())
                .into_iter()
                .flatten()
                .filter(|f| !have.contains(*f))
            {
                diags.push(Diagnostic::new(
                    SCHEMA_FILE,
                    t.at.0,
                    t.at.1,
                    format!(
                        "type {} implements {iface} but has no field {missing}",
                        t.name
                    ),
                ));
            }
            // A field the interface requires stays on the type in every view and is denied
            // (null, FORBIDDEN) where the view may not read it: a non-null type would null
            // the whole object instead.
            let required = interfaces.get(iface.as_str());
            for f in fields.iter().filter(|f| {
                f.access != crate::access::Access::Public
                    && !f.ty.nullable
                    && required.is_some_and(|r| r.contains(f.name.as_str()))
            }) {
                diags.push(
                    Diagnostic::new(
                        SCHEMA_FILE,
                        t.at.0,
                        t.at.1,
                        format!(
                            "{}.{} is required by {iface} and marked @access: its type must be nullable",
                            t.name, f.name
                        ),
                    )
                    .hint("callers who may not read it get null with FORBIDDEN; with a non-null type they would lose the whole object"),
                );
            }
        }
    }
}
