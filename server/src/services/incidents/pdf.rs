//! The printable reports as PDF, rendered by the server: the register of a period
//! (Appendix A's columns, one row per incident, coloured by level) and one incident
//! (every column, its history and its evidence with the SHA-256), A4 landscape, the
//! same content as the HTML reports.
//!
//! krilla (the PDF writer of typst) writes the PDF: it embeds only the glyphs used
//! (a subset of the font) with their Unicode mapping, so the text can be searched and
//! copied (`pdftotext`). The font is DejaVu Sans, embedded in the binary (Polish and
//! Ukrainian letters, which the PDF base fonts lack; its licence allows embedding and
//! redistribution: server/assets/fonts/LICENSE-DejaVu.txt). skrifa measures the text
//! for line breaking.

use crate::domain::incident::{Evidence, HistoryEntry, Incident, REGISTER_COLUMNS};
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};
use krilla::Document;
use skrifa::instance::{LocationRef, Size};
use skrifa::{FontRef, MetadataProvider};

static REGULAR: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// A4 landscape, in points.
const PAGE_W: f32 = 841.89;
const PAGE_H: f32 = 595.28;
const MARGIN: f32 = 28.0;
const FOOTER: f32 = 16.0;
const SIZE: f32 = 6.5;
const PAD: f32 = 2.0;

fn line_height(size: f32) -> f32 {
    size * 1.25
}

/// A row's background colour, and whether its text is white.
type Shade = ((u8, u8, u8), bool);

/// The levels' colours as the HTML report shows them: background, and white text on
/// black for level 5.
fn level_fill(level: i16) -> Shade {
    match level {
        1 => ((0xc8, 0xf0, 0xc8), false),
        2 => ((0xff, 0xf3, 0xa0), false),
        3 => ((0xff, 0xc8, 0x70), false),
        4 => ((0xff, 0x80, 0x80), false),
        5 => ((0x22, 0x22, 0x22), true),
        _ => ((0xff, 0xff, 0xff), false),
    }
}

/// Advance widths of one face, for line breaking.
struct Measure {
    charmap: skrifa::charmap::Charmap<'static>,
    metrics: skrifa::metrics::GlyphMetrics<'static>,
}

impl Measure {
    fn new(data: &'static [u8]) -> Result<Measure, String> {
        let font = FontRef::new(data).map_err(|e| format!("font: {e}"))?;
        Ok(Measure {
            charmap: font.charmap(),
            metrics: font.glyph_metrics(Size::new(1.0), LocationRef::default()),
        })
    }

    fn width(&self, text: &str, size: f32) -> f32 {
        text.chars()
            .map(|c| {
                self.charmap
                    .map(c)
                    .and_then(|g| self.metrics.advance_width(g))
                    .unwrap_or(0.6)
            })
            .sum::<f32>()
            * size
    }

    /// Lines of at most `width`: at spaces, and inside a word longer than a line.
    fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in clean(text).split('\n') {
            let mut line = String::new();
            for word in paragraph.split(' ').filter(|w| !w.is_empty()) {
                let candidate = if line.is_empty() {
                    word.to_owned()
                } else {
                    format!("{line} {word}")
                };
                if self.width(&candidate, size) <= width {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                // A word wider than the cell is broken where it must be.
                for c in word.chars() {
                    let mut next = line.clone();
                    next.push(c);
                    if !line.is_empty() && self.width(&next, size) > width {
                        lines.push(std::mem::take(&mut line));
                        line.push(c);
                    } else {
                        line = next;
                    }
                }
            }
            lines.push(line);
        }
        while lines.len() > 1 && lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }
}

/// Tabs and line ends kept as spaces and breaks; other control characters dropped.
fn clean(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .filter_map(|c| match c {
            '\n' => Some('\n'),
            '\t' | '\r' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// What is drawn on a page, laid out before anything is written.
enum Op {
    Text {
        x: f32,
        y: f32,
        text: String,
        bold: bool,
        size: f32,
        white: bool,
    },
    Fill {
        rect: (f32, f32, f32, f32),
        colour: (u8, u8, u8),
    },
    Frame {
        rect: (f32, f32, f32, f32),
    },
}

struct Cell {
    lines: Vec<String>,
    bold: bool,
}

struct Row {
    cells: Vec<Cell>,
    fill: Option<Shade>,
}

struct Layout {
    regular: Measure,
    bold: Measure,
    pages: Vec<Vec<Op>>,
    y: f32,
}

const BOTTOM: f32 = PAGE_H - MARGIN - FOOTER;
const CONTENT_W: f32 = PAGE_W - 2.0 * MARGIN;

impl Layout {
    fn new() -> Result<Layout, String> {
        Ok(Layout {
            regular: Measure::new(REGULAR)?,
            bold: Measure::new(BOLD)?,
            pages: vec![Vec::new()],
            y: MARGIN,
        })
    }

    fn page(&mut self) -> &mut Vec<Op> {
        self.pages.last_mut().expect("a page")
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN;
    }

    fn text(&mut self, x: f32, y: f32, text: &str, bold: bool, size: f32, white: bool) {
        if !text.is_empty() {
            self.page().push(Op::Text {
                x,
                y,
                text: text.to_owned(),
                bold,
                size,
                white,
            });
        }
    }

    /// A paragraph across the page's width, onto further pages as needed.
    fn paragraph(&mut self, text: &str, bold: bool, size: f32) {
        let measure = if bold { &self.bold } else { &self.regular };
        let lines = measure.wrap(text, size, CONTENT_W);
        let lh = line_height(size);
        for line in lines {
            if self.y + lh > BOTTOM {
                self.new_page();
            }
            self.y += lh;
            self.text(MARGIN, self.y - size * 0.25, &line, bold, size, false);
        }
    }

    fn gap(&mut self, h: f32) {
        self.y += h;
    }

    fn cell(&self, text: &str, width: f32, bold: bool) -> Cell {
        let measure = if bold { &self.bold } else { &self.regular };
        Cell {
            lines: measure.wrap(text, SIZE, width - 2.0 * PAD),
            bold,
        }
    }

    /// A table: the header row (bold, grey) repeated on every page it spans; a row
    /// taller than what is left of a page goes on across pages.
    fn table(&mut self, widths: &[f32], header: &[&str], rows: Vec<Row>) {
        let lh = line_height(SIZE);
        let header_row = (!header.is_empty()).then(|| Row {
            cells: header
                .iter()
                .zip(widths)
                .map(|(h, w)| self.cell(h, *w, true))
                .collect(),
            fill: Some(((0xee, 0xee, 0xee), false)),
        });
        let header_h = header_row
            .as_ref()
            .map(|r| {
                r.cells.iter().map(|c| c.lines.len()).max().unwrap_or(1) as f32 * lh + 2.0 * PAD
            })
            .unwrap_or(0.0);
        // At least the header and one line of a row on the page, or a new page.
        if self.y + header_h + lh + 2.0 * PAD > BOTTOM {
            self.new_page();
        }
        if let Some(h) = &header_row {
            self.row_segment(widths, h, 0, usize::MAX);
        }
        for row in rows {
            let total = row
                .cells
                .iter()
                .map(|c| c.lines.len())
                .max()
                .unwrap_or(1)
                .max(1);
            let mut from = 0;
            // A row that fits on a fresh page starts on one rather than being split.
            let whole = total as f32 * lh + 2.0 * PAD;
            if self.y + whole > BOTTOM && header_h + whole <= BOTTOM - MARGIN {
                self.new_page();
                if let Some(h) = &header_row {
                    self.row_segment(widths, h, 0, usize::MAX);
                }
            }
            while from < total {
                let room = ((BOTTOM - self.y - 2.0 * PAD) / lh).floor().max(0.0) as usize;
                if room == 0 {
                    self.new_page();
                    if let Some(h) = &header_row {
                        self.row_segment(widths, h, 0, usize::MAX);
                    }
                    continue;
                }
                let n = room.min(total - from);
                self.row_segment(widths, &row, from, n);
                from += n;
            }
        }
    }

    /// Lines `from..from+n` of a row's cells, framed, at the current position.
    fn row_segment(&mut self, widths: &[f32], row: &Row, from: usize, n: usize) {
        let lh = line_height(SIZE);
        let lines = row
            .cells
            .iter()
            .map(|c| c.lines.len().saturating_sub(from).min(n))
            .max()
            .unwrap_or(0)
            .max(1);
        let h = lines as f32 * lh + 2.0 * PAD;
        let top = self.y;
        let mut x = MARGIN;
        let white = row.fill.is_some_and(|(_, w)| w);
        if let Some((colour, _)) = row.fill {
            self.page().push(Op::Fill {
                rect: (MARGIN, top, widths.iter().sum(), h),
                colour,
            });
        }
        for (cell, w) in row.cells.iter().zip(widths) {
            for (k, line) in cell.lines.iter().skip(from).take(n).enumerate() {
                let baseline = top + PAD + (k as f32 + 1.0) * lh - SIZE * 0.3;
                self.text(x + PAD, baseline, line, cell.bold, SIZE, white);
            }
            self.page().push(Op::Frame {
                rect: (x, top, *w, h),
            });
            x += w;
        }
        self.y = top + h;
    }
}

fn level_text(i: &Incident) -> String {
    format!("{} {} ({})", i.level, i.level_name, i.level_colour)
}

fn title_block(layout: &mut Layout, title: &str) {
    layout.paragraph(title, true, 14.0);
    layout.gap(2.0);
    layout.paragraph(
        &format!(
            "Generated {}. Levels: 0 non-critical (white), 1 low (green), 2 medium (yellow), 3 high (orange), 4 critical (red), 5 emergency (black).",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
        ),
        false,
        7.5,
    );
    layout.gap(6.0);
}

/// The register of a period as PDF: one row per incident with Appendix A's columns
/// in order, after its level.
pub fn register_pdf(title: &str, incidents: &[Incident]) -> Result<Vec<u8>, String> {
    let mut layout = Layout::new()?;
    title_block(&mut layout, title);
    layout.paragraph(&format!("{} incident(s).", incidents.len()), false, 7.5);
    layout.gap(4.0);
    // level, then the 13 register columns; what is left goes to the comments.
    let mut widths = vec![
        46.0, 20.0, 72.0, 82.0, 82.0, 50.0, 56.0, 56.0, 50.0, 52.0, 52.0, 50.0, 38.0,
    ];
    widths.push(CONTENT_W - widths.iter().sum::<f32>());
    let mut header = vec!["level"];
    header.extend(REGISTER_COLUMNS);
    let rows = incidents
        .iter()
        .map(|i| {
            let mut texts = vec![level_text(i)];
            texts.extend(i.register_row());
            Row {
                cells: texts
                    .iter()
                    .zip(&widths)
                    .enumerate()
                    .map(|(k, (t, w))| layout.cell(t, *w, k < 2))
                    .collect(),
                fill: Some(level_fill(i.level)),
            }
        })
        .collect();
    layout.table(&widths, &header, rows);
    render(layout, title)
}

/// One incident as PDF: every register column and the rest of its record, its
/// history (each change with its link hash) and its evidence (with the SHA-256).
pub fn incident_pdf(
    incident: &Incident,
    history: &[HistoryEntry],
    evidence: &[Evidence],
) -> Result<Vec<u8>, String> {
    let i = incident;
    let title = format!("Incident No. {}: {}", i.number, i.name);
    let mut layout = Layout::new()?;
    title_block(&mut layout, &title);
    let widths = [170.0, CONTENT_W - 170.0];
    let mut fields: Vec<(String, String, Option<Shade>)> =
        vec![("level".into(), level_text(i), Some(level_fill(i.level)))];
    for (column, value) in REGISTER_COLUMNS.iter().zip(i.register_row()) {
        fields.push(((*column).into(), value, None));
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".into()
        } else {
            v.join(", ")
        }
    };
    fields.extend([
        ("type".into(), i.incident_type.clone(), None),
        ("classification".into(), i.classification.clone(), None),
        (
            "detected".into(),
            format!(
                "{} by {}",
                i.detected_at.format("%Y-%m-%d %H:%M:%S UTC"),
                i.detection_source
            ),
            None,
        ),
        ("devices".into(), list(&i.devices), None),
        ("users".into(), list(&i.users), None),
        (
            "closing report".into(),
            i.closing_report.clone().unwrap_or_else(|| "-".into()),
            None,
        ),
    ]);
    let rows = fields
        .into_iter()
        .map(|(label, value, fill)| Row {
            cells: vec![
                layout.cell(&label, widths[0], true),
                layout.cell(&value, widths[1], false),
            ],
            fill,
        })
        .collect();
    layout.table(&widths, &[], rows);
    if !history.is_empty() {
        layout.gap(10.0);
        layout.paragraph("History", true, 11.0);
        layout.gap(3.0);
        let mut widths = vec![22.0, 92.0, 100.0, 66.0, 0.0, 72.0];
        widths[4] = CONTENT_W - widths.iter().sum::<f32>();
        let rows = history
            .iter()
            .map(|h| Row {
                cells: [
                    h.seq.to_string(),
                    h.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    h.actor.clone(),
                    h.change.clone(),
                    h.details.to_string(),
                    h.hash.chars().take(16).collect(),
                ]
                .iter()
                .zip(&widths)
                .map(|(t, w)| layout.cell(t, *w, false))
                .collect(),
                fill: None,
            })
            .collect();
        layout.table(
            &widths,
            &["#", "when", "who", "what", "details", "link hash"],
            rows,
        );
    }
    if !evidence.is_empty() {
        layout.gap(10.0);
        layout.paragraph("Evidence", true, 11.0);
        layout.gap(3.0);
        let mut widths = vec![92.0, 100.0, 70.0, 0.0, 300.0];
        widths[3] = CONTENT_W - widths.iter().sum::<f32>();
        let rows = evidence
            .iter()
            .map(|e| Row {
                cells: [
                    e.collected_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    e.collected_by.clone(),
                    e.kind.clone(),
                    e.source.clone(),
                    e.sha256.clone(),
                ]
                .iter()
                .zip(&widths)
                .map(|(t, w)| layout.cell(t, *w, false))
                .collect(),
                fill: None,
            })
            .collect();
        layout.table(
            &widths,
            &["collected", "by", "kind", "source", "SHA-256"],
            rows,
        );
    }
    render(layout, &title)
}

/// Writes the laid-out pages, each with its footer.
fn render(layout: Layout, title: &str) -> Result<Vec<u8>, String> {
    let regular = Font::new(REGULAR.into(), 0).ok_or("the embedded font does not load")?;
    let bold = Font::new(BOLD.into(), 0).ok_or("the embedded bold font does not load")?;
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(title.to_owned())
            .creator("mdm incident register".into())
            .language("en".into()),
    );
    let total = layout.pages.len();
    let colour = |(r, g, b): (u8, u8, u8)| Fill {
        paint: rgb::Color::new(r, g, b).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    };
    for (n, mut ops) in layout.pages.into_iter().enumerate() {
        ops.push(Op::Text {
            x: MARGIN,
            y: PAGE_H - MARGIN + 4.0,
            text: format!("{title} · page {} of {total}", n + 1),
            bold: false,
            size: 7.0,
            white: false,
        });
        let settings = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or("bad page size")?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        for op in ops {
            match op {
                Op::Fill {
                    rect: (x, y, w, h),
                    colour: c,
                } => {
                    let mut pb = PathBuilder::new();
                    if let Some(r) = Rect::from_xywh(x, y, w, h) {
                        pb.push_rect(r);
                    }
                    if let Some(path) = pb.finish() {
                        surface.set_stroke(None);
                        surface.set_fill(Some(colour(c)));
                        surface.draw_path(&path);
                    }
                }
                Op::Frame { rect: (x, y, w, h) } => {
                    let mut pb = PathBuilder::new();
                    if let Some(r) = Rect::from_xywh(x, y, w, h) {
                        pb.push_rect(r);
                    }
                    if let Some(path) = pb.finish() {
                        surface.set_fill(None);
                        surface.set_stroke(Some(Stroke {
                            paint: rgb::Color::new(0x99, 0x99, 0x99).into(),
                            width: 0.4,
                            ..Default::default()
                        }));
                        surface.draw_path(&path);
                    }
                }
                Op::Text {
                    x,
                    y,
                    text,
                    bold: b,
                    size,
                    white,
                } => {
                    surface.set_stroke(None);
                    surface.set_fill(Some(colour(if white {
                        (0xff, 0xff, 0xff)
                    } else {
                        (0, 0, 0)
                    })));
                    surface.draw_text(
                        Point::from_xy(x, y),
                        if b { bold.clone() } else { regular.clone() },
                        size,
                        &text,
                        false,
                        TextDirection::Auto,
                    );
                }
            }
        }
        surface.finish();
        page.finish();
    }
    document.finish().map_err(|e| format!("PDF: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_spaces_and_inside_long_words() {
        let m = Measure::new(REGULAR).unwrap();
        let lines = m.wrap("Łukasz Żółć and Олена Коваленко", 10.0, 60.0);
        assert!(lines.len() >= 2, "{lines:?}");
        assert!(lines.iter().all(|l| m.width(l, 10.0) <= 60.0), "{lines:?}");
        assert_eq!(lines.join(" "), "Łukasz Żółć and Олена Коваленко");
        let long = "a".repeat(200);
        let lines = m.wrap(&long, 10.0, 50.0);
        assert!(lines.len() > 5 && lines.concat() == long);
        assert_eq!(m.wrap("", 10.0, 50.0), vec![String::new()]);
        assert_eq!(m.wrap("one\ntwo", 10.0, 500.0), vec!["one", "two"]);
    }

    #[test]
    fn a_pdf_is_written() {
        let pdf = register_pdf("Incident register", &[]).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
    }
}
