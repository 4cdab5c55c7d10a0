//! The report codes that no `Failure` carries (the script's own errors, the command line's, a
//! library's, Galley's), each with how a run that ends with it exits. A `Failure`'s code is on
//! its variant; between the two, every code Galley prints is written once, in this module.

/// How the process exits when a command ends with an error, by kind of error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The recipe ran and something failed.
    Failed,
    /// The command line or the recipe is wrong: nothing ran.
    Usage,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// A bug in Galley (a panic exits with the same code).
    Bug,
}

impl Exit {
    /// The process exit code.
    pub const fn code(self) -> i32 {
        match self {
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Interrupted => 130,
            Exit::Bug => 101,
        }
    }
}

/// Writes the `Code` enum from one row per code: name, text, exit.
macro_rules! codes {
    ($($(#[doc = $doc:literal])+ $name:ident = $text:literal => $exit:ident,)+) => {
        /// A report code that is not a `Failure`'s.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Code {
            $($(#[doc = $doc])+ $name,)+
        }

        impl Code {
            /// Every code, in the order of the list.
            pub const ALL: &[Code] = &[$(Code::$name),+];

            /// The stable text (`galley::...`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => $text,)+
                }
            }

            /// How a run that ends with this error exits.
            pub const fn exit(self) -> Exit {
                match self {
                    $(Code::$name => Exit::$exit,)+
                }
            }
        }
    };
}

codes! {
    /// The recipe or a module does not parse.
    Syntax = "galley::syntax" => Usage,
    /// A `throw` in the recipe or a module.
    Throw = "galley::throw" => Failed,
    /// More than `--max-operations` operations.
    OperationsLimit = "galley::operations_limit" => Failed,
    /// Ctrl-C or SIGTERM stopped the script (or its compile).
    Interrupted = "galley::interrupted" => Interrupted,
    /// A value of the wrong type in the script itself.
    Type = "galley::type" => Failed,
    /// A variable that is not defined.
    UnknownVariable = "galley::unknown_variable" => Failed,
    /// A string, array or map grew past Galley's limit.
    DataTooLarge = "galley::data_too_large" => Failed,
    /// Functions nested deeper than Galley's limit.
    CallDepth = "galley::call_depth" => Failed,
    /// An `import` path that resolves nowhere, or a module a library does not have.
    ModuleNotFound = "galley::module_not_found" => Failed,
    /// Any other error of the script engine, in its own words.
    Script = "galley::script" => Failed,
    /// A function that exists, called with arguments it does not take.
    WrongArguments = "galley::wrong_arguments" => Failed,
    /// A call to a function nobody defines.
    UnknownFunction = "galley::unknown_function" => Failed,
    /// `galley check`'s warning: a recipe function hides a built-in one of the same name.
    ShadowedFunction = "galley::shadowed_function" => Usage,
    /// The command line is wrong.
    Usage = "galley::usage" => Usage,
    /// `galley run FILE TASK` with a task the recipe does not have.
    UnknownTask = "galley::unknown_task" => Usage,
    /// The recipe file cannot be read.
    RecipeNotFound = "galley::recipe_not_found" => Usage,
    /// Galley could not start its runtime.
    Runtime = "galley::runtime" => Usage,
    /// A file of the command itself (not of a recipe's host) could not be read or written.
    Io = "galley::io" => Failed,
    /// A bug in Galley.
    Bug = "galley::bug" => Bug,
    /// An imported library is not in `galley.lock`, or its entry is for another source.
    LibraryNotLocked = "galley::library_not_locked" => Failed,
    /// `galley.toml` and `galley.lock` disagree under `--locked`.
    LibraryLockMismatch = "galley::library_lock_mismatch" => Failed,
    /// The locked commit of a library is not in the cache.
    LibraryNotFetched = "galley::library_not_fetched" => Failed,
    /// A library's checkout changed after it was fetched.
    LibraryTampered = "galley::library_tampered" => Failed,
    /// A locked tag names another commit now.
    LibraryTagMoved = "galley::library_tag_moved" => Failed,
    /// git could not fetch a library.
    LibraryFetch = "galley::library_fetch" => Failed,
    /// A library's `rev` is neither a tag nor a branch.
    LibraryRevNotFound = "galley::library_rev_not_found" => Failed,
    /// `galley.toml` does not parse or holds an invalid value.
    LibraryManifest = "galley::library_manifest" => Failed,
    /// `galley.lock` does not parse or holds an invalid value.
    LibraryLock = "galley::library_lock" => Failed,
    /// The library cache cannot be written.
    LibraryCache = "galley::library_cache" => Failed,
}
