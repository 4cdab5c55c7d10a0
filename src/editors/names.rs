//! The names editors colour, grouped from the API's catalog (`crate::api::catalog`): global
//! functions and methods, properties, native modules and the stdlib's modules.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::{Catalog, Kind};

/// Every name a recipe can call, by where it lives.
pub struct Names {
    /// Global functions and methods (`local`, `step`, `run`, `git`): calls look alike.
    pub functions: BTreeSet<String>,
    /// Properties (`h.name`, `e.code`).
    pub properties: BTreeSet<String>,
    /// Native modules and their functions (`ssh` → `connect`, `hosts`).
    pub modules: BTreeMap<String, BTreeSet<String>>,
    /// The stdlib's modules (`rolling`, imported as `galley/rolling`) and their functions.
    pub stdlib: BTreeMap<String, BTreeSet<String>>,
}

impl Names {
    /// The names of `catalog`.
    pub fn of(catalog: &Catalog) -> Names {
        let mut names = Names {
            functions: BTreeSet::new(),
            properties: BTreeSet::new(),
            modules: BTreeMap::new(),
            stdlib: BTreeMap::new(),
        };
        for f in &catalog.functions {
            let name = f.name.clone();
            match (&f.module, f.kind) {
                (Some(module), _) => {
                    let group = if f.stdlib {
                        &mut names.stdlib
                    } else {
                        &mut names.modules
                    };
                    group.entry(module.clone()).or_default().insert(name);
                }
                (None, Kind::Property) => {
                    names.properties.insert(name);
                }
                (None, Kind::Function | Kind::Method) => {
                    names.functions.insert(name);
                }
            }
        }
        names
    }
}
