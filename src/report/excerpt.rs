//! The few lines of a source that a report shows: the marked line and one line either side,
//! each clipped to a window around the mark and with control characters escaped, so that a
//! 10 MB line (or an escape sequence in a recipe) never reaches the terminal whole.

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use crate::exec::output::escape_control;

/// How many characters of a line a report shows at most.
const WIDTH: usize = 160;

/// Lines `first_line..` of a source, as shown in a report.
#[derive(Debug, Clone)]
pub struct Excerpt {
    name: String,
    text: String,
    /// The 0-based line number of the excerpt's first line in the whole source.
    first_line: usize,
}

impl Excerpt {
    /// The excerpt around 1-based `line` and `column` (characters) of `source`, and the span
    /// (offset, length in bytes) of the token there, inside the excerpt.
    pub fn around(name: &str, source: &str, line: usize, column: usize) -> (Self, usize, usize) {
        let first = line.saturating_sub(2);
        let mut text = String::new();
        let mut span = (0, 0);
        for (i, content) in source
            .lines()
            .enumerate()
            .skip(first)
            .take(line + 1 - first)
        {
            if i + 1 == line {
                let (shown, offset, len) = clip_at(content, column);
                span = (text.len() + offset, len);
                text.push_str(&shown);
            } else {
                text.push_str(&clip_at(content, 1).0);
            }
            text.push('\n');
        }
        let excerpt = Excerpt {
            name: name.to_string(),
            text,
            first_line: first,
        };
        (excerpt, span.0, span.1)
    }
}

/// A window of `line` around 1-based `column`, escaped, with the byte offset and length of
/// the token at the column inside it.
fn clip_at(line: &str, column: usize) -> (String, usize, usize) {
    let chars: Vec<char> = line.chars().collect();
    let at = column.saturating_sub(1).min(chars.len());
    let start = if chars.len() <= WIDTH {
        0
    } else {
        at.saturating_sub(WIDTH / 2)
    };
    let end = (start + WIDTH).min(chars.len());
    let token = chars[at..end]
        .iter()
        .take_while(|c| c.is_alphanumeric() || **c == '_')
        .count()
        .max(usize::from(at < end));
    let piece =
        |from: usize, to: usize| escape_control(&chars[from..to].iter().collect::<String>());
    let mut shown = String::new();
    if start > 0 {
        shown.push('…');
    }
    shown.push_str(&piece(start, at));
    let offset = shown.len();
    let marked = piece(at, at + token);
    shown.push_str(&marked);
    shown.push_str(&piece(at + token, end));
    if end < chars.len() {
        shown.push('…');
    }
    (shown, offset, marked.len())
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(
            MietteSpanContents::new_named(
                self.name.clone(),
                inner.data(),
                *inner.span(),
                inner.line() + self.first_line,
                inner.column(),
                inner.line_count(),
            )
            .with_language("rust"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_the_token_in_a_short_line() {
        let source = "let a = 1;\nlocal().rnu(\"x\");\nlet b = 2;\n";
        let (excerpt, offset, len) = Excerpt::around("r", source, 2, 9);
        assert_eq!(&excerpt.text[offset..offset + len], "rnu");
        assert_eq!(excerpt.first_line, 0);
    }

    #[test]
    fn clips_a_huge_line_around_the_mark() {
        let line = format!("let x = \"{}\" +* 1;", "y".repeat(10_000_000));
        let column = line.find("+*").unwrap() + 2;
        let (excerpt, offset, len) = Excerpt::around("r", &line, 1, column);
        assert!(excerpt.text.len() < 400, "{}", excerpt.text.len());
        assert_eq!(&excerpt.text[offset..offset + len], "*");
    }

    #[test]
    fn escapes_control_characters() {
        let (excerpt, ..) = Excerpt::around("r", "let a = \"\x1b[2J\";", 1, 1);
        assert!(!excerpt.text.contains('\x1b'));
    }
}
