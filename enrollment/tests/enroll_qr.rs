//! QR renderings, decoded by a real reader (zbarimg) and parsed back into modules.

mod enroll_support;

use enroll_support::{
    grid_to_png, temp_file, zbar_decode_file, zbar_decode_png, zbarimg_available,
};
use enrollment::qr::{self, QrError, QUIET_ZONE, TERMINAL_BLACK_ON_WHITE, TERMINAL_RESET};
use std::process::Command;

const URL: &str = "https://mdm.townhall.example/enroll?token=3f9c2a7b1e4d4c0f9a8b7c6d5e4f3a2b";

/// About 600 bytes of JSON, like an Android provisioning payload with Wi-Fi.
fn json_600() -> String {
    let mut s = String::from("{");
    let mut i = 0;
    while s.len() < 580 {
        s.push_str(&format!(
            "\"android.app.extra.KEY_{i:02}\":\"value-{i:02}-abcdefgh\","
        ));
        i += 1;
    }
    s.push_str("\"end\":true}");
    assert!((580..=650).contains(&s.len()), "{}", s.len());
    s
}

/// The full grid with quiet zone, from the encoder's own module list.
fn expected_grid(data: &str) -> Vec<Vec<bool>> {
    let (width, dark) = qr::modules(data).unwrap();
    let q = QUIET_ZONE as usize;
    let side = width + 2 * q;
    let mut grid = vec![vec![false; side]; side];
    for y in 0..width {
        for x in 0..width {
            grid[y + q][x + q] = dark[y * width + x];
        }
    }
    grid
}

fn decode_png_pixels(png_bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info, buf)
}

#[test]
fn png_is_8_bit_greyscale_with_quiet_zone_and_the_modules() {
    let scale = 5;
    let png_bytes = qr::png(URL, scale).unwrap();
    let (info, pixels) = decode_png_pixels(&png_bytes);
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let grid = expected_grid(URL);
    let side = grid.len() * scale as usize;
    assert_eq!((info.width as usize, info.height as usize), (side, side));
    // Every pixel is pure black or white and matches its module.
    for (y, row) in pixels.chunks(side).enumerate() {
        for (x, &p) in row.iter().enumerate() {
            let dark = grid[y / scale as usize][x / scale as usize];
            assert_eq!(p, if dark { 0 } else { 255 }, "pixel {x},{y}");
        }
    }
    // The quiet zone is light, the finder pattern's corner dark.
    let q = QUIET_ZONE as usize;
    assert!(grid[..q].iter().all(|r| r.iter().all(|d| !d)));
    assert!(grid[q][q]);
}

#[test]
fn png_url_decodes_with_zbarimg() {
    if !zbarimg_available("png_url_decodes_with_zbarimg") {
        return;
    }
    for scale in [2, 4, 8] {
        let png_bytes = qr::png(URL, scale).unwrap();
        assert_eq!(zbar_decode_png(&png_bytes, "url.png"), URL, "scale {scale}");
    }
}

#[test]
fn png_600_byte_json_decodes_with_zbarimg() {
    if !zbarimg_available("png_600_byte_json_decodes_with_zbarimg") {
        return;
    }
    let json = json_600();
    let png_bytes = qr::png(&json, 4).unwrap();
    assert_eq!(zbar_decode_png(&png_bytes, "json.png"), json);
}

/// Reads the SVG's path back into modules: `M{x} {y}h8v8H{x}V{y}` per dark module,
/// 8 units per module, quiet zone included in the coordinates.
fn svg_grid(svg: &str) -> Vec<Vec<bool>> {
    let view_box = svg
        .split("viewBox=\"0 0 ")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let side_units: usize = view_box.split(' ').next().unwrap().parse().unwrap();
    assert_eq!(side_units % 8, 0);
    let side = side_units / 8;
    let mut grid = vec![vec![false; side]; side];
    let path = svg
        .split(" d=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    for cmd in path.split('M').filter(|c| !c.is_empty()) {
        let (x, rest) = cmd.split_once(' ').unwrap();
        let y: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
        let tail = &rest[y.to_string().len()..];
        assert_eq!(tail, format!("h8v8H{x}V{y}"), "one module per rect");
        assert_eq!((x % 8, y % 8), (0, 0));
        grid[y / 8][x / 8] = true;
    }
    grid
}

#[test]
fn svg_parses_back_into_the_modules() {
    for data in [URL.to_owned(), json_600()] {
        let svg = qr::svg(&data).unwrap();
        assert!(svg.contains("shape-rendering=\"crispEdges\""));
        assert!(svg.contains("fill=\"#ffffff\""));
        assert!(svg.contains("fill=\"#000000\""));
        assert_eq!(svg_grid(&svg), expected_grid(&data));
    }
}

#[test]
fn svg_decodes_with_zbarimg_after_rsvg_convert() {
    let test = "svg_decodes_with_zbarimg_after_rsvg_convert";
    if !zbarimg_available(test) {
        return;
    }
    let have_rsvg = Command::new("rsvg-convert")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_rsvg {
        println!("SKIPPED {test}: rsvg-convert not installed (apt-get install librsvg2-bin); svg_parses_back_into_the_modules still checks the modules");
        return;
    }
    for (name, data) in [("url", URL.to_owned()), ("json", json_600())] {
        let svg_path = temp_file(&format!("{name}.svg"));
        let png_path = temp_file(&format!("{name}-svg.png"));
        std::fs::write(&svg_path, qr::svg(&data).unwrap()).unwrap();
        // Rendered at half the natural size: 4 px per module, a realistic display size.
        let status = Command::new("rsvg-convert")
            .args(["--zoom", "0.5", "--background-color", "white", "-o"])
            .arg(&png_path)
            .arg(&svg_path)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(zbar_decode_file(&png_path), data, "{name}");
        std::fs::remove_file(&svg_path).ok();
        std::fs::remove_file(&png_path).ok();
    }
}

/// Reads the terminal rendering back into modules: strips the colour codes and maps
/// each half-block character to its two module rows.
fn terminal_grid(text: &str) -> Vec<Vec<bool>> {
    let mut grid = Vec::new();
    for line in text.lines() {
        let inner = line
            .strip_prefix(TERMINAL_BLACK_ON_WHITE)
            .and_then(|l| l.strip_suffix(TERMINAL_RESET))
            .unwrap_or_else(|| panic!("line without colours: {line:?}"));
        let (mut top, mut bottom) = (Vec::new(), Vec::new());
        for c in inner.chars() {
            let (t, b) = match c {
                ' ' => (false, false),
                '▀' => (true, false),
                '▄' => (false, true),
                '█' => (true, true),
                other => panic!("unexpected character {other:?}"),
            };
            top.push(t);
            bottom.push(b);
        }
        grid.push(top);
        grid.push(bottom);
    }
    grid
}

#[test]
fn terminal_text_parses_back_and_decodes() {
    for data in [URL.to_owned(), json_600()] {
        let text = qr::terminal(&data).unwrap();
        assert!(text.ends_with(&format!("{TERMINAL_RESET}\n")));
        let expected = expected_grid(&data);
        // Two module rows per line: an odd side gets one light row of padding.
        assert_eq!(text.lines().count(), expected.len().div_ceil(2));
        let mut grid = terminal_grid(&text);
        if grid.len() > expected.len() {
            assert!(
                grid.pop().unwrap().iter().all(|d| !d),
                "padding row is light"
            );
        }
        assert_eq!(grid, expected);
        if zbarimg_available("terminal_text_parses_back_and_decodes (zbarimg part)") {
            let png_bytes = grid_to_png(&grid, 4);
            assert_eq!(zbar_decode_png(&png_bytes, "terminal.png"), data);
        }
    }
}

#[test]
fn errors() {
    assert!(matches!(qr::png("", 4), Err(QrError::Empty)));
    assert!(matches!(qr::svg(""), Err(QrError::Empty)));
    assert!(matches!(qr::terminal(""), Err(QrError::Empty)));
    assert!(matches!(qr::png(URL, 0), Err(QrError::BadScale(0))));
    assert!(matches!(qr::png(URL, 33), Err(QrError::BadScale(33))));
    qr::png(URL, qr::MAX_SCALE).unwrap();
    let huge = "x".repeat(3000);
    let err = qr::png(&huge, 4).unwrap_err();
    assert!(matches!(err, QrError::TooLong { len: 3000, .. }), "{err}");
    assert!(matches!(qr::svg(&huge), Err(QrError::TooLong { .. })));
    assert!(matches!(qr::terminal(&huge), Err(QrError::TooLong { .. })));
}

#[test]
fn level_m_capacity() {
    // Level M holds 2331 bytes in version 40; level L would hold 2953. The limit
    // shows that M is what the encoder uses.
    assert!(qr::png(&"x".repeat(2331), 1).is_ok());
    assert!(qr::png(&"x".repeat(2332), 1).is_err());
}
