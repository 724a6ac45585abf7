//! The CSV users file: `username,upn,email,display_name,department,groups`, groups
//! separated by `;`. A header row naming the columns (any order; department and
//! groups may be left out) is recognised by its `username` cell; without one the
//! columns are in that order. UTF-8, with or without a byte-order mark; fields may be
//! quoted as RFC 4180 says. Rows are numbered as lines of the file, the header
//! being row 1.

use super::plan::UserInput;

pub const COLUMNS: [&str; 6] = [
    "username",
    "upn",
    "email",
    "display_name",
    "department",
    "groups",
];
const REQUIRED: [&str; 4] = ["username", "upn", "email", "display_name"];
/// Most rows one import takes.
pub const MAX_ROWS: usize = 100_000;
/// Most errors listed (the count is always said).
const MAX_ERRORS: usize = 100;

/// Reads the file: the users, or every problem found (with row and column).
pub fn parse(bytes: &[u8]) -> Result<Vec<UserInput>, Vec<String>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut errors = Vec::new();
    let mut columns: Option<Vec<&'static str>> = None;
    let mut users = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (index, record) in reader.byte_records().enumerate() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let row = e
                    .position()
                    .map(|p| line_of(bytes, p.byte()))
                    .unwrap_or(index + 1);
                errors.push(format!("row {row}: not readable as CSV ({e})"));
                break;
            }
        };
        let row = record
            .position()
            .map(|p| line_of(bytes, p.byte()))
            .unwrap_or(index + 1);
        let mut cells = Vec::with_capacity(record.len());
        let mut bad_text = false;
        for (i, raw) in record.iter().enumerate() {
            match std::str::from_utf8(raw) {
                Ok(s) => cells.push(s.trim().to_owned()),
                Err(_) => {
                    let column = columns
                        .as_ref()
                        .and_then(|c| c.get(i).copied())
                        .unwrap_or("?");
                    errors.push(format!(
                        "row {row}, column {column}: not UTF-8 text (save the file as UTF-8)"
                    ));
                    bad_text = true;
                }
            }
        }
        if bad_text {
            continue;
        }
        if cells.iter().all(|c| c.is_empty()) {
            continue;
        }
        let cols = match &columns {
            Some(c) => c,
            None => {
                if cells.iter().any(|c| c.eq_ignore_ascii_case("username")) {
                    match header(&cells) {
                        Ok(c) => columns = Some(c),
                        Err(e) => {
                            errors.extend(e.into_iter().map(|e| format!("row {row}: {e}")));
                            return Err(errors);
                        }
                    }
                    continue;
                }
                columns = Some(COLUMNS.to_vec());
                columns.as_ref().unwrap()
            }
        };
        if cells.len() > cols.len() {
            errors.push(format!(
                "row {row}: {} fields, but there are {} columns ({})",
                cells.len(),
                cols.len(),
                cols.join(",")
            ));
            continue;
        }
        if users.len() >= MAX_ROWS {
            errors.push(format!(
                "row {row}: more than {MAX_ROWS} users in one file; split it"
            ));
            break;
        }
        let get = |name: &str| -> Option<String> {
            cols.iter()
                .position(|c| *c == name)
                .and_then(|i| cells.get(i).cloned())
        };
        let mut missing = false;
        for name in REQUIRED {
            if cols.contains(&name) && get(name).filter(|v| !v.is_empty()).is_none() {
                errors.push(format!("row {row}, column {name}: missing"));
                missing = true;
            }
        }
        if missing {
            continue;
        }
        let user = UserInput {
            row,
            username: get("username").unwrap_or_default(),
            upn: get("upn").unwrap_or_default(),
            email: get("email").unwrap_or_default(),
            display_name: get("display_name").unwrap_or_default(),
            department: get("department").filter(|d| !d.is_empty()),
            groups: cols.contains(&"groups").then(|| {
                get("groups")
                    .unwrap_or_default()
                    .split(';')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
        };
        // Every field's problems now, with the file's other problems.
        errors.extend(super::plan::check_user(&user));
        match seen.get(&user.username.to_lowercase()) {
            Some(first) => errors.push(format!(
                "row {row}, column username: {} is also in row {first}",
                user.username
            )),
            None => {
                seen.insert(user.username.to_lowercase(), row);
            }
        }
        users.push(user);
    }
    if users.is_empty() && errors.is_empty() {
        errors.push("the file holds no users".into());
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        Err(limit(errors))
    }
}

/// The line (from 1) at a byte offset: rows are numbered as the file's lines, blank
/// lines and line breaks inside quoted fields included.
fn line_of(bytes: &[u8], offset: u64) -> usize {
    let mut end = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    // The csv reader starts a record at the blank lines it skipped before it.
    while end < bytes.len() && matches!(bytes[end], b'\n' | b'\r') {
        end += 1;
    }
    1 + bytes[..end].iter().filter(|b| **b == b'\n').count()
}

/// At most MAX_ERRORS messages, and how many more there were.
pub fn limit(mut errors: Vec<String>) -> Vec<String> {
    if errors.len() > MAX_ERRORS {
        let more = errors.len() - MAX_ERRORS;
        errors.truncate(MAX_ERRORS);
        errors.push(format!("... and {more} more errors"));
    }
    errors
}

fn header(cells: &[String]) -> Result<Vec<&'static str>, Vec<String>> {
    let mut errors = Vec::new();
    let mut columns = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let name = cell.to_ascii_lowercase().replace([' ', '-'], "_");
        match COLUMNS.iter().find(|c| **c == name) {
            Some(c) if columns.contains(c) => {
                errors.push(format!("column {} ({cell}) appears twice", i + 1))
            }
            Some(c) => columns.push(*c),
            None => errors.push(format!(
                "column {} is {cell:?}, not one of {}",
                i + 1,
                COLUMNS.join(", ")
            )),
        }
    }
    for r in REQUIRED {
        if !columns.contains(&r) {
            errors.push(format!("the header lacks the column {r}"));
        }
    }
    if errors.is_empty() {
        Ok(columns)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_header_quotes_and_groups() {
        let text = "\u{feff}username,upn,email,display_name,department,groups\n\
                    jan,jan@example.org,jan@example.org,\"Kowalski, Jan\",IT,staff; it\n\
                    \n\
                    zofia,zofia@example.org,zofia@example.org,Zofia Żółć,,\n";
        let users = parse(text.as_bytes()).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].row, 2);
        assert_eq!(users[0].display_name, "Kowalski, Jan");
        assert_eq!(
            users[0].groups.as_deref(),
            Some(&["staff".to_owned(), "it".to_owned()][..])
        );
        assert_eq!(users[1].row, 4);
        assert_eq!(users[1].display_name, "Zofia Żółć");
        assert_eq!(users[1].department, None);
        assert_eq!(users[1].groups.as_deref(), Some(&[][..]));
    }

    #[test]
    fn columns_in_another_order_and_without_a_header() {
        let users = parse(b"email,username,display_name,upn\na@x.org,a,A,a@x.org\n").unwrap();
        assert_eq!(users[0].username, "a");
        assert_eq!(users[0].groups, None);
        let users = parse(b"b,b@x.org,b@x.org,B\n").unwrap();
        assert_eq!(users[0].row, 1);
        assert_eq!(users[0].display_name, "B");
    }

    #[test]
    fn problems_name_their_row_and_column() {
        let errors = parse(b"username,upn,mail,display_name\n").unwrap_err();
        assert!(errors.iter().any(|e| e.contains("\"mail\"")), "{errors:?}");
        let errors = parse(
            b"username,upn,email,display_name\njan,jan@x.org,,Jan\nanna,a@x.org,a@x.org,Anna,extra\n",
        )
        .unwrap_err();
        assert_eq!(errors[0], "row 2, column email: missing");
        assert!(errors[1].starts_with("row 3: 5 fields"), "{errors:?}");
        let errors = parse(b"username,upn,email,display_name\njan,j@x,j@x,\xff\xfe\n").unwrap_err();
        assert!(
            errors[0].starts_with("row 2, column display_name: not UTF-8"),
            "{errors:?}"
        );
        assert_eq!(parse(b"").unwrap_err(), vec!["the file holds no users"]);
    }
}
