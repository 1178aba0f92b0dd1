//! Names and messages users give us, as a terminal would show them: what
//! must not hide in them (control characters, and the invisible formatting
//! characters that reorder or hide text: bidi overrides, zero-width marks).

/// Whether a character is a control or an invisible formatting character.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// A name made path- and crate-safe: lowercase ASCII letters and digits,
/// anything else a `-`, no `-` at either end (may be empty).
pub fn slug(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    slug.trim_matches('-').to_string()
}

/// A line cut to at most `max` characters, saying how much was left out.
pub fn clip(line: &str, max: usize) -> String {
    match line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}[... {} more bytes]", &line[..cut], line.len() - cut),
        None => line.to_string(),
    }
}

/// Checks a name: some visible character, at most `max` characters, nothing hidden.
pub fn check_name(name: &str, max: usize) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 || chars > max {
        return Err(format!("has 1 to {max} characters; this one has {chars}"));
    }
    if name.trim().is_empty() {
        return Err("has only spaces".into());
    }
    if name.chars().any(is_hidden) {
        return Err("cannot hold control or invisible formatting characters".into());
    }
    Ok(())
}

/// Checks a name that is also a file name and a metadata value (an app id,
/// a version name): 1 to `max` letters, digits, `.`, `_` or `-`, starting
/// with a letter or a digit.
pub fn check_token(name: &str, max: usize) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 || chars > max {
        return Err(format!("has {chars} characters; 1 to {max} are allowed"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("may hold only letters, digits, '.', '_' and '-'".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or a digit".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_clipped_on_a_character_boundary() {
        assert_eq!(clip("héllo", 2), "hé[... 3 more bytes]");
        assert_eq!(clip("hi", 2), "hi");
    }

    #[test]
    fn names_hide_nothing() {
        assert_eq!(check_name("zk-1", 8), Ok(()));
        assert_eq!(check_name("", 8).unwrap_err(), "has 1 to 8 characters; this one has 0");
        assert_eq!(
            check_name("123456789", 8).unwrap_err(),
            "has 1 to 8 characters; this one has 9"
        );
        assert_eq!(check_name("   ", 8).unwrap_err(), "has only spaces");
        for hidden in ["a\u{1b}[2J", "evil\u{202E}txt", "a\u{200B}b", "a\nb"] {
            assert!(check_name(hidden, 16).unwrap_err().contains("invisible"), "{hidden:?}");
        }
    }
}
