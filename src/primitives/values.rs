//! Values a recipe reads from outside: `params` (from `--set`), `env(...)` and `secret(...)`.

use std::collections::HashMap;
use std::sync::Arc;

use rhai::{Dynamic, Engine, Map};

use super::process::parse_env_file;
use crate::error::Failure;
use crate::exec::Ctx;

/// Where `secret(name)` looks after the environment.
#[derive(Default)]
pub struct SecretsFile {
    path: Option<String>,
    values: HashMap<String, String>,
}

impl SecretsFile {
    /// Loads a `.env`-style file of secrets.
    pub fn load(path: &str) -> Result<Self, Failure> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::local_io("read secrets file", path, e))?;
        Ok(SecretsFile {
            path: Some(path.to_string()),
            values: parse_env_file(&text).into_iter().collect(),
        })
    }
}

impl SecretsFile {
    /// Every value in the file: all are masked before the first line is printed, whether or not
    /// the recipe reads them.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.values.values().map(String::as_str)
    }
}

/// Parses `--set key=value` pairs into the `params` map.
pub fn params_from(pairs: &[String]) -> Result<Map, String> {
    let mut params = Map::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--set {pair:?}: expected key=value"))?;
        params.insert(key.trim().into(), value.to_string().into());
    }
    Ok(params)
}

/// What the command line hands to a recipe.
#[derive(Default)]
pub struct RunInputs {
    /// `--set` values.
    pub params: Map,
    /// The task named on the command line ("" for none).
    pub task: String,
    /// The folder of the recipe file.
    pub recipe_dir: String,
    /// `--secrets FILE`.
    pub secrets: SecretsFile,
}

/// Registers `params`, `task`, `recipe_dir()`, `env` and `secret`.
pub fn register(engine: &mut Engine, ctx: &Arc<Ctx>, inputs: RunInputs) {
    let params = Dynamic::from_map(inputs.params);
    let task = Dynamic::from(inputs.task);
    // A variable resolver, so that tasks (functions, which do not see the top-level scope) read these too.
    #[allow(deprecated)] // `on_var` is marked volatile, not going away.
    engine.on_var(move |name, _, _| {
        Ok(match name {
            "params" => Some(params.clone()),
            "task" => Some(task.clone()),
            _ => None,
        })
    });
    let recipe_dir = inputs.recipe_dir;
    engine.register_fn("recipe_dir", move || recipe_dir.clone());
    let secrets = inputs.secrets;

    engine.register_fn("env", |name: &str| {
        std::env::var(name).map_err(|_| Failure::MissingEnv { name: name.into() }.into_rhai())
    });
    engine.register_fn("env", |name: &str, default: &str| {
        std::env::var(name).unwrap_or_else(|_| default.to_string())
    });

    let ctx = ctx.clone();
    let secrets = Arc::new(secrets);
    engine.register_fn("secret", move |name: &str| {
        let value = std::env::var(name)
            .ok()
            .or_else(|| secrets.values.get(name).cloned());
        let Some(value) = value else {
            return Err(Failure::MissingSecret {
                name: name.into(),
                secrets_file: secrets.path.clone(),
            }
            .into_rhai());
        };
        if !ctx.printer.masker().add(&value) {
            ctx.printer.warn(&format!(
                "secret `{name}` is shorter than 3 characters and cannot be masked"
            ));
        }
        Ok(value)
    });
}
