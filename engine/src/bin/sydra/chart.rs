//! A terminal line chart in Braille dots (2 × 4 dots per character cell),
//! one panel per series: a person reads a curve faster than a column of
//! numbers.

use std::fmt::Write as _;

/// Character cells across the plot area.
pub const WIDTH: usize = 64;
/// Character rows of the plot area.
pub const HEIGHT: usize = 12;

/// The Braille dot bit of (column 0..2, row 0..4) within a cell.
fn dot(col: usize, row: usize) -> u8 {
    const BITS: [[u8; 4]; 2] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]];
    BITS[col & 1][row & 3]
}

/// A y value the way the axis prints it: short, never more than 10 chars.
fn label(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || (1e-3..1e6).contains(&a) {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        format!("{v:.2e}")
    }
}

/// Render one series' points (time-ordered; NaN values skipped) as a panel
/// titled `title`, with the time axis labelled by `fmt_time`.
pub fn panel(title: &str, points: &[(i64, f64)], fmt_time: impl Fn(i64) -> String) -> String {
    let pts: Vec<(i64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
        let _ = writeln!(out, "  (no finite values)");
        return out;
    };
    let (t0, t1) = (first.0, last.0);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in &pts {
        lo = lo.min(p.1);
        hi = hi.max(p.1);
    }
    let (min, max) = (lo, hi);
    if hi == lo {
        hi = lo + 1.0;
        lo -= 1.0;
    }
    let (w, h) = (WIDTH * 2, HEIGHT * 4);
    let x_of = |t: i64| -> usize {
        if t1 == t0 {
            return w / 2;
        }
        let f = (t as f64 - t0 as f64) / (t1 as f64 - t0 as f64);
        ((f * (w - 1) as f64).round() as usize).min(w - 1)
    };
    let y_of = |v: f64| -> usize {
        let f = (v - lo) / (hi - lo);
        // Row 0 is the top.
        (h - 1) - ((f * (h - 1) as f64).round() as usize).min(h - 1)
    };
    let mut cells = vec![0u8; WIDTH * HEIGHT];
    let mut set = |x: usize, y: usize| {
        cells[(y / 4) * WIDTH + x / 2] |= dot(x % 2, y % 4);
    };
    let mut prev: Option<(usize, usize)> = None;
    for p in &pts {
        let (x, y) = (x_of(p.0), y_of(p.1));
        match prev {
            // A line between neighbours, stepping along the longer axis.
            Some((px, py)) => {
                let n = px.abs_diff(x).max(py.abs_diff(y)).max(1);
                for i in 0..=n {
                    let xi = px as f64 + (x as f64 - px as f64) * i as f64 / n as f64;
                    let yi = py as f64 + (y as f64 - py as f64) * i as f64 / n as f64;
                    set(xi.round() as usize, yi.round() as usize);
                }
            }
            None => set(x, y),
        }
        prev = Some((x, y));
    }
    let (top, bottom) = (label(hi), label(lo));
    let pad = top.len().max(bottom.len());
    for row in 0..HEIGHT {
        let axis = match row {
            0 => top.as_str(),
            r if r == HEIGHT - 1 => bottom.as_str(),
            _ => "",
        };
        let _ = write!(out, "{axis:>pad$} ┤");
        for c in &cells[row * WIDTH..(row + 1) * WIDTH] {
            out.push(char::from_u32(0x2800 + u32::from(*c)).unwrap_or(' '));
        }
        out.push('\n');
    }
    let (a, b) = (fmt_time(t0), fmt_time(t1));
    let gap = (WIDTH + 1).saturating_sub(a.len() + b.len()).max(1);
    let _ = writeln!(out, "{:pad$} {a}{:gap$}{b}", "", "");
    let _ = writeln!(
        out,
        "{:pad$} {} point(s), min {}, max {}",
        "",
        pts.len(),
        label(min),
        label(max)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rising_line_goes_from_bottom_left_to_top_right() {
        let pts: Vec<(i64, f64)> = (0..100).map(|i| (i, i as f64)).collect();
        let s = panel("t", &pts, |t| t.to_string());
        let rows: Vec<&str> = s.lines().skip(1).take(HEIGHT).collect();
        // The top row's dots are at the right end, the bottom row's at the
        // left end.
        let first_dot = |r: &str| {
            r.chars()
                .skip_while(|c| *c != '┤')
                .skip(1)
                .position(|c| c != '\u{2800}')
        };
        let top = first_dot(rows[0]).unwrap_or(usize::MAX);
        let bottom = first_dot(rows[HEIGHT - 1]).unwrap_or(usize::MAX);
        assert!(top > WIDTH - 8, "{s}");
        assert_eq!(bottom, 0, "{s}");
        assert!(s.contains("100 point(s), min 0, max 99"), "{s}");
    }

    #[test]
    fn flat_and_empty_series_do_not_divide_by_zero() {
        let s = panel("flat", &[(5, 2.0), (6, 2.0)], |t| t.to_string());
        assert!(s.contains("2 point(s)"), "{s}");
        let s = panel("nan", &[(5, f64::NAN)], |t| t.to_string());
        assert!(s.contains("no finite values"), "{s}");
    }
}
