//! Values a recipe reads from outside: `params` (from `--set`), `env(...)` and `secret(...)`.

use std::collections::HashMap;
use std::sync::Arc;

use rhai::{Dynamic, Map};

use super::process::parse_env_file;
use crate::api::{Api, Spec};
use crate::error::{Failure, RhaiResult};
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
pub fn register(api: &mut Api, ctx: &Arc<Ctx>, inputs: RunInputs) {
    let params = Dynamic::from_map(inputs.params);
    let task = Dynamic::from(inputs.task);
    // A variable resolver, so that tasks (functions, which do not see the top-level scope) read these too.
    #[allow(deprecated)] // `on_var` is marked volatile, not going away.
    api.engine().on_var(move |name, _, _| {
        Ok(match name {
            "params" => Some(params.clone()),
            "task" => Some(task.clone()),
            _ => None,
        })
    });
    let recipe_dir = inputs.recipe_dir;
    api.register(
        Spec::function("recipe_dir", &[], "string")
            .doc("The folder of the recipe file, for paths next to it.")
            .example(r#"local().upload(recipe_dir() + "/app.env", "/srv/app/app.env");"#),
        move || recipe_dir.clone(),
    );
    let secrets = inputs.secrets;

    const ENV: Spec = Spec::function("env", &[("name", "string")], "string")
        .doc("An environment variable; fails when it is not set.")
        .example(r#"let token = env("DEPLOY_TOKEN");"#);
    api.register(ENV, |name: &str| -> RhaiResult<String> {
        Ok(std::env::var(name).map_err(|_| Failure::MissingEnv { name: name.into() })?)
    });
    api.register(
        Spec {
            params: &[("name", "string"), ("default", "string")],
            ..ENV
        }
        .doc("An environment variable, or `default` when it is not set.")
        .example(r#"let port = env("PORT", "8000");"#),
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_string()),
    );

    let ctx = ctx.clone();
    let secrets = Arc::new(secrets);
    api.register(
        Spec::function("secret", &[("name", "string")], "string")
            .doc("A secret from the environment or the --secrets file; its value is masked in every output from then on.")
            .example(r#"let password = secret("DB_PASSWORD");"#),
        move |name: &str| -> RhaiResult<String> {
            let value = std::env::var(name)
                .ok()
                .or_else(|| secrets.values.get(name).cloned());
            let Some(value) = value else {
                return Err(Failure::MissingSecret {
                    name: name.into(),
                    secrets_file: secrets.path.clone(),
                }
                .into());
            };
            if !ctx.printer.masker().add(&value) {
                ctx.printer.warn(&format!(
                    "secret `{name}` is shorter than 3 characters and cannot be masked"
                ));
            }
            Ok(value)
        },
    );
}
