//! Editor support generated from the engine, so that nothing an editor knows is kept by hand:
//! Rhai definition files (`galley defs`), the VS Code grammar and snippets, the vim syntax.

mod definitions;
mod names;
mod snippets;
pub mod templates;
mod textmate;
mod vim;

use crate::engine::Galley;
use names::Names;

/// The definition files: (file name, text).
pub fn definition_files(galley: &Galley) -> Vec<(String, String)> {
    definitions::files(&galley.engine, &crate::api::catalog(galley))
}

/// Every generated file of the `editors/` folder: (path relative to it, text).
pub fn editor_files(galley: &Galley) -> Vec<(String, String)> {
    let catalog = crate::api::catalog(galley);
    let names = Names::of(&catalog);
    let mut files: Vec<(String, String)> = definitions::files(&galley.engine, &catalog)
        .into_iter()
        .map(|(name, text)| (format!("definitions/{name}"), text))
        .collect();
    files.push((
        "vscode/syntaxes/galley.tmLanguage.json".into(),
        textmate::grammar(&names),
    ));
    files.push(("vscode/snippets/galley.json".into(), snippets::snippets()));
    files.push(("vim/after/syntax/rhai.vim".into(), vim::syntax(&names)));
    files
}
