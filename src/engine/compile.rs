//! Compiling a recipe in time linear in its size. Rhai's parser looks up every `let` among all
//! the variables declared before it in the same block, so a recipe of N top-level `let` lines
//! costs N² comparisons (10 MB of them took minutes). A large recipe is therefore cut at
//! top-level statement ends into chunks that are compiled one by one and combined: each chunk
//! only searches its own variables, and a variable of an earlier chunk is found by name when
//! the recipe runs, as Rhai does for any variable it did not see declared.

use rhai::{Engine, ParseError, AST};

/// Below this size a recipe is compiled in one piece, exactly as Rhai does it.
const CHUNKED_ABOVE: usize = 64 * 1024;
/// The size a chunk grows to before it is cut at the next statement end.
const CHUNK: usize = 8 * 1024;
/// Rhai numbers lines up to this and no further.
const MAX_LINE: usize = u16::MAX as usize;

/// Compiles `text`; `cancelled` is asked between chunks, and `None` is returned when it says so.
pub fn compile(
    engine: &Engine,
    text: &str,
    cancelled: &dyn Fn() -> bool,
) -> Option<Result<AST, ParseError>> {
    compile_pieces(text, cancelled, &mut |piece| engine.compile(piece))
}

/// Compiles `text` with `compile_piece`: in one piece when it is small, else chunk by chunk,
/// each chunk preceded by newlines so that its positions are those of the whole recipe.
pub fn compile_pieces(
    text: &str,
    cancelled: &dyn Fn() -> bool,
    compile_piece: &mut dyn FnMut(&str) -> Result<AST, ParseError>,
) -> Option<Result<AST, ParseError>> {
    if text.len() <= CHUNKED_ABOVE {
        return Some(compile_piece(text));
    }
    let mut ast = AST::empty();
    let mut padding = String::new();
    for (first_line, chunk) in chunks(text) {
        if cancelled() {
            return None;
        }
        // Newlines in front keep every position in the chunk the same as in the whole recipe.
        let lines_before = (first_line - 1).min(MAX_LINE - 1);
        padding.truncate(0);
        padding.extend(std::iter::repeat_n('\n', lines_before));
        padding.push_str(chunk);
        match compile_piece(&padding) {
            Ok(part) => {
                ast.combine(part);
            }
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok(ast))
}

/// What the scanner is inside of.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Code,
    /// A `"` string or a `'` character.
    Quoted(u8),
    /// A back-tick string, outside its `${ }` parts.
    Backtick,
    /// A raw string `#"..."#` closed by `"` and this many `#`.
    Raw(usize),
    LineComment,
    BlockComment(usize),
}

/// An open bracket: `(`, `[`, `{` (also `#{`), or the `${` of a back-tick string.
#[derive(Clone, Copy, PartialEq)]
enum Open {
    Bracket,
    Interpolation,
}

/// The recipe cut into (first line, text) pieces at line ends that follow a `;` ending a
/// top-level statement, each at least `CHUNK` bytes (but the last).
// One state machine over the bytes: its states read best side by side.
#[allow(clippy::too_many_lines)]
fn chunks(text: &str) -> Vec<(usize, &str)> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let (mut start, mut start_line, mut line) = (0, 1, 1);
    let mut mode = Mode::Code;
    let mut open: Vec<Open> = Vec::new();
    let mut last = 0u8;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied().unwrap_or(0);
        if b == b'\n' {
            line += 1;
        }
        match mode {
            Mode::Code => match b {
                b'\n' if open.is_empty() && last == b';' && i + 1 - start >= CHUNK => {
                    pieces.push((start_line, &text[start..=i]));
                    start = i + 1;
                    start_line = line;
                }
                // A comment may be a doc comment that belongs to what follows: no cut after it.
                b'/' if next == b'/' => {
                    mode = Mode::LineComment;
                    last = 0;
                }
                b'/' if next == b'*' => {
                    mode = Mode::BlockComment(1);
                    last = 0;
                    i += 1;
                }
                b'"' | b'\'' => mode = Mode::Quoted(b),
                b'`' => mode = Mode::Backtick,
                b'#' if next == b'{' => {
                    open.push(Open::Bracket);
                    i += 1;
                }
                b'#' if next == b'"' || next == b'#' => {
                    let hashes = bytes[i..].iter().take_while(|c| **c == b'#').count();
                    if bytes.get(i + hashes) == Some(&b'"') {
                        mode = Mode::Raw(hashes);
                        i += hashes;
                    }
                }
                b'(' | b'[' | b'{' => open.push(Open::Bracket),
                b')' | b']' => {
                    open.pop();
                }
                b'}' => {
                    mode = match open.pop() {
                        Some(Open::Interpolation) => Mode::Backtick,
                        _ => mode,
                    };
                }
                _ => {}
            },
            Mode::Quoted(quote) => {
                if b == b'\\' {
                    i += 1;
                    if next == b'\n' {
                        line += 1;
                    }
                } else if b == quote {
                    mode = Mode::Code;
                }
            }
            Mode::Backtick => {
                if b == b'`' {
                    mode = Mode::Code;
                } else if b == b'$' && next == b'{' {
                    open.push(Open::Interpolation);
                    mode = Mode::Code;
                    i += 1;
                }
            }
            Mode::Raw(hashes) => {
                let closes = b == b'"'
                    && bytes[i + 1..].len() >= hashes
                    && bytes[i + 1..i + 1 + hashes].iter().all(|c| *c == b'#');
                if closes {
                    mode = Mode::Code;
                    i += hashes;
                }
            }
            Mode::LineComment => {
                if b == b'\n' {
                    mode = Mode::Code;
                    // The newline ends the comment and may end a chunk: look at it again.
                    line -= 1;
                    continue;
                }
            }
            Mode::BlockComment(depth) => {
                if b == b'/' && next == b'*' {
                    mode = Mode::BlockComment(depth + 1);
                    i += 1;
                } else if b == b'*' && next == b'/' {
                    mode = if depth == 1 {
                        Mode::Code
                    } else {
                        Mode::BlockComment(depth - 1)
                    };
                    i += 1;
                }
            }
        }
        // The last significant character of the code, for the statement-end test.
        if mode == Mode::Code && !b.is_ascii_whitespace() {
            last = b;
        }
        i += 1;
    }
    if start < text.len() {
        pieces.push((start_line, &text[start..]));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(text: &str) -> Vec<String> {
        chunks(text)
            .into_iter()
            .map(|(_, t)| t.to_string())
            .collect()
    }

    #[test]
    fn cuts_only_after_top_level_statements() {
        let filler = format!("let a = \"{}\";\n", "x".repeat(CHUNK));
        let text = format!(
            "{filler}fn f() {{\n  let b = 1;\n{filler}}}\nlet c = `{filler}${{ 1; }}\n`;\n/*\n{filler}*/\nlet z = 0;\nlet d = 2; // end;\nlet e = 3;\n"
        );
        let pieces = cut(&text);
        assert_eq!(pieces.concat(), text);
        for piece in &pieces[1..] {
            assert!(
                piece.starts_with("fn f()")
                    || piece.starts_with("/*")
                    || piece.starts_with("let d"),
                "cut at {:?}",
                &piece[..20.min(piece.len())]
            );
        }
        // Each piece parses on its own.
        let engine = Engine::new();
        for piece in &pieces {
            engine.compile(piece).unwrap();
        }
    }

    #[test]
    fn positions_and_variables_stay_as_in_one_piece() {
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("let v{i} = {i};\n"));
        }
        text.push_str("let total = v0 + v19999;\nthrow total;\n");
        let engine = Engine::new();
        let ast = compile(&engine, &text, &|| false).unwrap().unwrap();
        let err = engine.run_ast(&ast).unwrap_err();
        assert_eq!(err.position().line(), Some(20_002));
        assert!(err.to_string().contains("19999"), "{err}");
        let err = compile(&engine, &format!("{text}let = ;\n"), &|| false)
            .unwrap()
            .unwrap_err();
        assert_eq!(err.1.line(), Some(20_003));
        assert!(compile(&engine, &text, &|| true).is_none());
    }
}
