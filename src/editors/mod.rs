//! Editor support generated from the engine, so that nothing an editor knows is kept by hand:
//! Rhai definition files (`galley defs`), the VS Code grammar and snippets, the vim syntax.

mod catalog;
mod definitions;
mod snippets;
pub mod templates;
mod textmate;
mod vim;

use rhai::Engine;

use crate::report::Report;
use catalog::Catalog;

/// The definition files: (file name, text).
pub fn definition_files(engine: &Engine) -> Result<Vec<(String, String)>, Report> {
    let catalog = Catalog::of(engine)?;
    Ok(definitions::files(engine, &catalog))
}

/// Every generated file of the `editors/` folder: (path relative to it, text).
pub fn editor_files(engine: &Engine) -> Result<Vec<(String, String)>, Report> {
    let catalog = Catalog::of(engine)?;
    let mut files: Vec<(String, String)> = definitions::files(engine, &catalog)
        .into_iter()
        .map(|(name, text)| (format!("definitions/{name}"), text))
        .collect();
    files.push((
        "vscode/syntaxes/galley.tmLanguage.json".into(),
        textmate::grammar(&catalog),
    ));
    files.push(("vscode/snippets/galley.json".into(), snippets::snippets()));
    files.push(("vim/after/syntax/rhai.vim".into(), vim::syntax(&catalog)));
    Ok(files)
}
