//! QR codes for enrollment links and Android provisioning payloads, as PNG, SVG and
//! text for a terminal.
//!
//! Error correction level M (15 % of the symbol recoverable): the usual compromise
//! for codes shown on screens and paper, and what phones' camera apps and Android's
//! setup wizard read without trouble; H would make the ~600-byte provisioning JSON
//! too dense for cheap cameras. Every rendering keeps the 4-module quiet zone the
//! QR specification requires, which readers need to find the code.

use qrcode::render::{svg as qr_svg, unicode};
use qrcode::{Color, EcLevel, QrCode};

/// Modules of light margin around the symbol (ISO/IEC 18004 quiet zone).
pub const QUIET_ZONE: u32 = 4;
/// Largest pixels-per-module for [`png`]: 32 already makes a version-40 code 5920 px
/// wide, and bounds memory for a caller that passes a user-supplied scale.
pub const MAX_SCALE: u32 = 32;

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("the data does not fit in a QR code at error correction level M ({len} bytes; at most about 2300 bytes of text fit): {source}")]
    TooLong {
        len: usize,
        source: qrcode::types::QrError,
    },
    #[error("the data is empty")]
    Empty,
    #[error("scale must be 1 to {MAX_SCALE} pixels per module, not {0}")]
    BadScale(u32),
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

fn encode(data: &str) -> Result<QrCode, QrError> {
    if data.is_empty() {
        return Err(QrError::Empty);
    }
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).map_err(|source| {
        QrError::TooLong {
            len: data.len(),
            source,
        }
    })
}

/// The symbol's modules (true = dark), row by row, without the quiet zone; the
/// renderers below and the tests' decoders share this view of the code.
pub fn modules(data: &str) -> Result<(usize, Vec<bool>), QrError> {
    let code = encode(data)?;
    let width = code.width();
    let dark = code
        .to_colors()
        .into_iter()
        .map(|c| c == Color::Dark)
        .collect();
    Ok((width, dark))
}

/// 8-bit greyscale PNG, black modules on white, `scale` pixels per module, quiet
/// zone included.
///
/// Greyscale rather than 1-bit so that any image library reads it; the zlib
/// compression of the flat areas makes the size difference negligible.
pub fn png(data: &str, scale: u32) -> Result<Vec<u8>, QrError> {
    if scale == 0 || scale > MAX_SCALE {
        return Err(QrError::BadScale(scale));
    }
    let (width, dark) = modules(data)?;
    let scale = scale as usize;
    let quiet = QUIET_ZONE as usize;
    let side_modules = width + 2 * quiet;
    let side = side_modules * scale;

    // One row of pixels per module row, repeated `scale` times.
    let mut pixels = vec![0xFFu8; side * side];
    for my in 0..width {
        let mut row = vec![0xFFu8; side];
        for mx in 0..width {
            if dark[my * width + mx] {
                let start = (mx + quiet) * scale;
                row[start..start + scale].fill(0x00);
            }
        }
        for dy in 0..scale {
            let y = (my + quiet) * scale + dy;
            pixels[y * side..(y + 1) * side].copy_from_slice(&row);
        }
    }

    let mut out = Vec::new();
    {
        let mut encoder = ::png::Encoder::new(&mut out, side as u32, side as u32);
        encoder.set_color(::png::ColorType::Grayscale);
        encoder.set_depth(::png::BitDepth::Eight);
        encoder.set_compression(::png::Compression::High);
        let mut writer = encoder
            .write_header()
            .map_err(|e| QrError::Png(e.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| QrError::Png(e.to_string()))?;
        writer.finish().map_err(|e| QrError::Png(e.to_string()))?;
    }
    Ok(out)
}

/// SVG, black on white, 8 user units per module with the quiet zone; it scales
/// without blur (`shape-rendering="crispEdges"`), so the web UI can size it freely.
pub fn svg(data: &str) -> Result<String, QrError> {
    let code = encode(data)?;
    Ok(code
        .render::<qr_svg::Color>()
        .quiet_zone(true)
        .module_dimensions(8, 8)
        .dark_color(qr_svg::Color("#000000"))
        .light_color(qr_svg::Color("#ffffff"))
        .build())
}

/// Text for a terminal: Unicode half blocks (▀ ▄ █), two module rows per line, quiet
/// zone included, one line per text row ending in '\n'.
///
/// Each line sets black on white with ANSI colours and resets at its end. Plain
/// half blocks are drawn in the terminal's text colour, which on the usual dark
/// theme gives light modules on dark ground: an inverted code that many readers,
/// including Android's setup wizard, do not decode. With explicit colours the code
/// is dark-on-light on every theme.
pub fn terminal(data: &str) -> Result<String, QrError> {
    let code = encode(data)?;
    let text = code
        .render::<unicode::Dense1x2>()
        .quiet_zone(true)
        .module_dimensions(1, 1)
        .dark_color(unicode::Dense1x2::Dark)
        .light_color(unicode::Dense1x2::Light)
        .build();
    let mut out = String::with_capacity(text.len() + 16 * text.lines().count());
    for line in text.lines() {
        out.push_str(TERMINAL_BLACK_ON_WHITE);
        out.push_str(line);
        out.push_str(TERMINAL_RESET);
        out.push('\n');
    }
    Ok(out)
}

/// SGR 30 (black text) on 47 (white background): the basic eight colours, which every
/// terminal emulator and the Linux console support.
pub const TERMINAL_BLACK_ON_WHITE: &str = "\x1b[30;47m";
pub const TERMINAL_RESET: &str = "\x1b[0m";
