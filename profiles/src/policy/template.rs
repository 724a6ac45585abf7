//! `{{user.email}}`-style templates in mail fields.
//!
//! The only syntax is `{{ variable }}` (spaces inside the braces are optional); every
//! other character is copied as is. An unknown variable or an unclosed `{{` is an
//! error, so that a typo never reaches a device as literal text.

use super::model::UserAttributes;

/// The variables a template may use.
pub const VARIABLES: &[&str] = &[
    "user.email",
    "user.upn",
    "user.username",
    "user.display_name",
    "user.department",
];

/// One piece of a template: literal text or a variable.
enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn pieces(t: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| {
            format!(
                "\"{{{{\" at byte {} is never closed by \"}}}}\"",
                t.len() - rest.len() + open
            )
        })?;
        let name = after[..close].trim();
        if !VARIABLES.contains(&name) {
            return Err(if name.is_empty() {
                "empty variable \"{{}}\"".to_string()
            } else {
                format!("unknown variable \"{name}\"")
            });
        }
        out.push(Piece::Var(name));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// The variables a template uses, in order; an error names what is wrong with it.
pub fn template_variables(t: &str) -> Result<Vec<&str>, String> {
    Ok(pieces(t)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Var(v) => Some(v),
            Piece::Text(_) => None,
        })
        .collect())
}

/// Fills a template in with the user's attributes.
///
/// Errors: an unknown variable, an unclosed `{{`, a variable used when there is no
/// user (the device has none), or `{{user.department}}` for a user without one.
pub fn render_template(t: &str, user: Option<&UserAttributes>) -> Result<String, String> {
    let mut out = String::with_capacity(t.len());
    for piece in pieces(t)? {
        match piece {
            Piece::Text(s) => out.push_str(s),
            Piece::Var(name) => {
                let user = user.ok_or_else(|| {
                    format!("\"{{{{{name}}}}}\" needs the device's user, and the device has none")
                })?;
                let value = match name {
                    "user.email" => &user.email,
                    "user.upn" => &user.upn,
                    "user.username" => &user.username,
                    "user.display_name" => &user.display_name,
                    "user.department" => user.department.as_ref().ok_or_else(|| {
                        format!(
                            "\"{{{{user.department}}}}\": user {:?} has no department",
                            user.username
                        )
                    })?,
                    _ => unreachable!("pieces() lets only known variables through"),
                };
                out.push_str(value);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jan() -> UserAttributes {
        UserAttributes {
            username: "jan.kowalski".into(),
            upn: "jan.kowalski@town.example".into(),
            email: "jan.kowalski@mail.town.example".into(),
            display_name: "Jan Kowalski".into(),
            department: None,
            groups: vec![],
        }
    }

    #[test]
    fn fills_in_known_variables() {
        let u = jan();
        assert_eq!(
            render_template("{{user.display_name}} <{{ user.email }}>", Some(&u)).unwrap(),
            "Jan Kowalski <jan.kowalski@mail.town.example>"
        );
        assert_eq!(
            render_template("TOWN\\{{user.username}}", Some(&u)).unwrap(),
            "TOWN\\jan.kowalski"
        );
        assert_eq!(
            render_template("plain } text", None).unwrap(),
            "plain } text"
        );
        assert_eq!(render_template("", None).unwrap(), "");
    }

    #[test]
    fn refuses_what_it_cannot_fill() {
        let u = jan();
        let e = render_template("{{user.mail}}", Some(&u)).unwrap_err();
        assert!(e.contains("unknown variable \"user.mail\""), "{e}");
        let e = render_template("{{user.email", Some(&u)).unwrap_err();
        assert!(e.contains("never closed"), "{e}");
        let e = render_template("{{user.upn}}", None).unwrap_err();
        assert!(e.contains("{{user.upn}}") && e.contains("has none"), "{e}");
        let e = render_template("{{user.department}}", Some(&u)).unwrap_err();
        assert!(e.contains("no department"), "{e}");
        assert_eq!(
            template_variables("{{user.upn}}-{{user.email}}").unwrap(),
            vec!["user.upn", "user.email"]
        );
    }
}
