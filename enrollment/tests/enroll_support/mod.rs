//! Shared by the QR and Android tests: decoding with the real zbarimg, and turning a
//! module grid back into a PNG.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// True when zbarimg runs; otherwise prints the SKIPPED line for `test`.
pub fn zbarimg_available(test: &str) -> bool {
    let ok = Command::new("zbarimg")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("SKIPPED {test}: zbarimg not installed (apt-get install zbar-tools)");
    }
    ok
}

pub fn temp_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enroll-qr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Decodes every QR code in the image file with `zbarimg --raw -q`.
pub fn zbar_decode_file(path: &std::path::Path) -> String {
    let out = Command::new("zbarimg")
        .args(["--raw", "-q", "-Sdisable", "-Sqrcode.enable"])
        .arg(path)
        .output()
        .expect("run zbarimg");
    assert!(
        out.status.success(),
        "zbarimg found no code in {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("zbarimg printed UTF-8");
    // zbarimg ends each decoded symbol with a newline.
    text.strip_suffix('\n').unwrap_or(&text).to_owned()
}

pub fn zbar_decode_png(png: &[u8], name: &str) -> String {
    let path = temp_file(name);
    std::fs::write(&path, png).unwrap();
    let text = zbar_decode_file(&path);
    std::fs::remove_file(&path).ok();
    text
}

/// A module grid (true = dark, quiet zone included by the caller) as a greyscale
/// PNG with `scale` pixels per module, written with the png crate independently of
/// `enrollment::qr::png`.
pub fn grid_to_png(grid: &[Vec<bool>], scale: usize) -> Vec<u8> {
    let h = grid.len();
    let w = grid[0].len();
    let mut pixels = Vec::with_capacity(w * h * scale * scale);
    for row in grid {
        for _ in 0..scale {
            for &dark in row {
                pixels.resize(pixels.len() + scale, if dark { 0u8 } else { 255u8 });
            }
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, (w * scale) as u32, (h * scale) as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    out
}
