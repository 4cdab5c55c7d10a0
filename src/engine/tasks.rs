//! The functions a recipe defines, in source order, and which of them are its tasks.

use rhai::{Engine, FnAccess, Position, Token, AST};

use crate::error::{suggest, Code};
use crate::report::Report;

/// A `fn` as written in the source: Rhai's AST keeps functions in a hash map, without positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub name: String,
    pub params: Vec<String>,
    /// The `fn` keyword (or `private`).
    pub start: Position,
    /// The name.
    pub name_at: Position,
    /// The `}` that closes the body.
    pub end: Position,
}

impl Definition {
    /// Whether `pos` lies in this function's text.
    pub fn contains(&self, pos: Position) -> bool {
        self.start <= pos && pos <= self.end
    }
}

/// Every `fn` definition in `text`, in source order.
pub fn definitions(engine: &Engine, text: &str) -> Vec<Definition> {
    let mut found = Vec::new();
    let inputs = [text];
    let mut tokens = Tokens::new(engine, &inputs);
    let mut start = None;
    while let Some((token, pos)) = tokens.next() {
        match token {
            Token::Private => start = Some(pos),
            Token::Fn => {
                let start = start.take().unwrap_or(pos);
                if let Some(def) = definition(&mut tokens, start) {
                    found.push(def);
                }
            }
            _ => start = None,
        }
    }
    found
}

/// Reads `name(params) { body }` after a `fn` keyword (or `Type.name(...)` for a method).
fn definition(tokens: &mut Tokens, start: Position) -> Option<Definition> {
    let (token, mut name_at) = tokens.next()?;
    let mut name = match token {
        Token::Identifier(name) | Token::StringConstant(name) => name.to_string(),
        _ => return None,
    };
    let mut params = Vec::new();
    loop {
        match tokens.next()?.0 {
            Token::Period => {
                if let (Token::Identifier(method), at) = tokens.next()? {
                    name = method.to_string();
                    name_at = at;
                }
            }
            Token::Unit => break,
            Token::LeftParen => {
                while let Some((token, _)) = tokens.next() {
                    match token {
                        Token::Identifier(param) => params.push(param.to_string()),
                        Token::RightParen => break,
                        _ => {}
                    }
                }
                break;
            }
            _ => return None,
        }
    }
    let depth = tokens.depth;
    let mut end = start;
    while let Some((token, pos)) = tokens.next() {
        if token == Token::RightBrace && tokens.depth == depth {
            end = pos;
            break;
        }
    }
    Some(Definition {
        name,
        params,
        start,
        name_at,
        end,
    })
}

/// Rhai's tokens of a source, with the brace depth, switching back to text after each `${ }` of
/// a back-tick string as Rhai's parser does (the tokenizer alone would read the rest as code).
struct Tokens<'a> {
    inner: rhai::TokenIterator<'a>,
    control: rhai::TokenizerControl,
    /// Open `{` and `#{`.
    depth: usize,
    /// The depth outside each open `${`.
    interpolations: Vec<usize>,
}

impl<'a> Tokens<'a> {
    fn new(engine: &'a Engine, inputs: &'a [&'a str]) -> Self {
        let (inner, control) = engine.lex(inputs);
        Tokens {
            inner,
            control,
            depth: 0,
            interpolations: Vec::new(),
        }
    }

    fn next(&mut self) -> Option<(Token, Position)> {
        let (token, pos) = self.inner.next()?;
        match token {
            Token::EOF | Token::LexError(_) => return None,
            Token::InterpolatedString(_) => self.interpolations.push(self.depth),
            Token::LeftBrace | Token::MapStart => self.depth += 1,
            Token::RightBrace => {
                self.depth = self.depth.saturating_sub(1);
                if self.interpolations.last() == Some(&self.depth) {
                    self.interpolations.pop();
                    self.control.borrow_mut().is_within_text = true;
                }
            }
            _ => {}
        }
        Some((token, pos))
    }
}

/// A task: a public top-level function with a `///` doc comment, shown by `galley list`.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub name: String,
    pub params: Vec<String>,
    /// The doc comment, its lines joined with spaces.
    pub doc: String,
    pub position: Position,
}

/// The tasks of a recipe (`text` compiled into `ast`), in source order.
pub fn tasks(engine: &Engine, ast: &AST, text: &str) -> Vec<Task> {
    definitions(engine, text)
        .into_iter()
        .filter_map(|def| {
            let f = ast
                .iter_functions()
                .find(|f| f.name == def.name && f.params.len() == def.params.len())?;
            let doc = doc_text(&f.comments);
            (f.access != FnAccess::Private && !doc.is_empty()).then_some(Task {
                name: def.name,
                params: def.params,
                doc,
                position: def.start,
            })
        })
        .collect()
}

/// A doc comment's text without its `///`, `/**` and `*/`, lines joined with spaces.
fn doc_text(comments: &[&str]) -> String {
    comments
        .iter()
        .flat_map(|c| c.lines())
        .map(|l| {
            l.trim()
                .trim_start_matches("///")
                .trim_start_matches("/**")
                .trim_end_matches("*/")
                .trim()
        })
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The names `galley run FILE NAME` can call: public top-level functions without parameters,
/// documented (tasks) or not.
fn callable(ast: &AST) -> impl Iterator<Item = &str> {
    ast.iter_functions()
        .filter(|f| f.access != FnAccess::Private && f.params.is_empty())
        .filter(|f| !f.name.starts_with("anon$"))
        .map(|f| f.name)
}

/// The report for `galley run FILE NAME` when the recipe has no function NAME to call; it
/// lists the tasks (as `galley list` does) and the other functions that can be called.
pub fn unknown_task(
    engine: &Engine,
    ast: &AST,
    text: &str,
    file: &str,
    name: &str,
) -> Option<Report> {
    if callable(ast).any(|n| n == name) {
        return None;
    }
    let tasks: Vec<String> = tasks(engine, ast, text)
        .into_iter()
        .filter(|t| t.params.is_empty())
        .map(|t| t.name)
        .collect();
    let mut others: Vec<&str> = callable(ast)
        .filter(|n| !tasks.iter().any(|t| t == n))
        .collect();
    others.sort_unstable();
    let near = suggest(
        name,
        tasks
            .iter()
            .map(String::as_str)
            .chain(others.iter().copied()),
    )
    .map(|n| format!("did you mean `{n}`? "))
    .unwrap_or_default();
    let listed = if tasks.is_empty() {
        "it has no tasks (a task is a top-level `fn` with a `///` doc comment)".to_string()
    } else {
        format!("tasks: {}", tasks.join(", "))
    };
    let others = if others.is_empty() {
        String::new()
    } else {
        format!(
            "; other functions without parameters: {}",
            others.join(", ")
        )
    };
    Some(Report::plain(
        Code::UnknownTask,
        format!("{file} has no task `{name}`"),
        format!("{near}{listed}{others} (see `galley list {file}`)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::output::Reportable;

    fn names(text: &str) -> Vec<(String, Vec<String>, (usize, usize))> {
        definitions(&Engine::new(), text)
            .into_iter()
            .map(|d| {
                (
                    d.name,
                    d.params,
                    (d.start.line().unwrap(), d.end.line().unwrap()),
                )
            })
            .collect()
    }

    #[test]
    fn finds_definitions_in_source_order_with_their_extent() {
        let text = "let s = `a ${ #{ x: 1 }.x } fn not_me() { }`;\n\
                    fn zeta(a, b) {\n  let m = #{ k: `${ if a { b } else { 1 } }` };\n}\n\
                    // fn commented() {}\n\
                    private fn alpha() { \"fn quoted() {}\" }\n\
                    fn mid() {}\n";
        assert_eq!(
            names(text),
            vec![
                ("zeta".into(), vec!["a".into(), "b".into()], (2, 4)),
                ("alpha".into(), vec![], (6, 6)),
                ("mid".into(), vec![], (7, 7)),
            ]
        );
    }

    #[test]
    fn tasks_are_documented_public_functions_in_source_order() {
        let engine = Engine::new();
        let text = "/// Last.\nfn z() {}\nfn helper(x) { x }\n/// Takes one.\nfn one(x) {}\n\
                    /// Hidden.\nprivate fn p() {}\n/** First\n block. */\nfn a() { let f = |x| x; }\n";
        let ast = engine.compile(text).unwrap();
        let found: Vec<(String, String)> = tasks(&engine, &ast, text)
            .into_iter()
            .map(|t| (t.name, t.doc))
            .collect();
        assert_eq!(
            found,
            vec![
                ("z".into(), "Last.".into()),
                ("one".into(), "Takes one.".into()),
                ("a".into(), "First block.".into()),
            ]
        );
        assert!(unknown_task(&engine, &ast, text, "r.rhai", "helper").is_some());
        assert!(unknown_task(&engine, &ast, text, "r.rhai", "z").is_none());
        let report = unknown_task(&engine, &ast, text, "r.rhai", "zz").unwrap();
        assert_eq!(report.message(), "r.rhai has no task `zz`");
    }
}
