//! `--svg FILE`: bar charts of the median round trip and of the throughput, per mechanism
//! and message size, ipcx beside its raw lane, drawn with `plotters` (SVG backend only).

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::units::fmt_size;
use super::LaneResult;

pub fn draw(path: &Path, results: &[LaneResult], sizes: &[usize]) -> Result<()> {
    let mut mechs: Vec<&str> = Vec::new();
    for r in results.iter().filter(|r| r.skipped.is_none()) {
        if !mechs.contains(&r.mechanism.as_str()) {
            mechs.push(&r.mechanism);
        }
    }
    let width = (160 + 110 * mechs.len().max(4)) as u32;
    let root = SVGBackend::new(path, (width, 1000)).into_drawing_area();
    let e = |e: DrawingAreaErrorKind<_>| anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(e)?;
    let (top, bottom) = root.split_vertically(500);
    panel(
        &top,
        "Round trip, median (lower is better); solid: ipcx, pale: raw system calls",
        "round trip (ns, log scale)",
        &mechs,
        sizes,
        results,
        |r| r.p50_ns,
    )
    .map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    panel(
        &bottom,
        "One-way throughput, median (higher is better); solid: ipcx, pale: raw system calls",
        "throughput (MB/s, log scale)",
        &mechs,
        sizes,
        results,
        |r| r.mb_per_s,
    )
    .map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    root.present().map_err(e)?;
    Ok(())
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    mechs: &[&str],
    sizes: &[usize],
    results: &[LaneResult],
    value: fn(&LaneResult) -> f64,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let vals: Vec<f64> = results
        .iter()
        .filter(|r| r.skipped.is_none())
        .map(value)
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    if vals.is_empty() {
        return Ok(());
    }
    // Room below the bars for the mechanism names, above them for the legend.
    let lo = vals.iter().copied().fold(f64::INFINITY, f64::min) / 8.0;
    let floor = lo * 2.5;
    let hi = vals.iter().copied().fold(0.0, f64::max) * 12.0;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(10)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..mechs.len() as f64, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(y_desc)
        .y_label_formatter(&|v| format_axis(*v))
        .draw()?;
    let bars = sizes.len() * 2;
    let w = 0.8 / bars as f64;
    for (si, &size) in sizes.iter().enumerate() {
        for (k, imp) in ["ipcx", "raw"].into_iter().enumerate() {
            let base = Palette99::pick(si);
            let color = if k == 0 { base.to_rgba() } else { base.mix(0.35) };
            let rects: Vec<_> = mechs
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    let r = results.iter().find(|r| {
                        r.mechanism == *m
                            && r.size == size
                            && r.implementation == imp
                            && r.skipped.is_none()
                    })?;
                    let v = value(r);
                    if !(v.is_finite() && v > 0.0) {
                        return None;
                    }
                    let x0 = i as f64 + 0.1 + (si * 2 + k) as f64 * w;
                    Some(Rectangle::new([(x0, floor), (x0 + w * 0.9, v)], color.filled()))
                })
                .collect();
            chart.draw_series(rects)?.label(format!("{} {imp}", fmt_size(size))).legend(
                move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()),
            );
        }
    }
    chart.draw_series(mechs.iter().enumerate().map(|(i, m)| {
        Text::new(m.to_string(), (i as f64 + 0.1, lo * 1.9), ("sans-serif", 14).into_font())
    }))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn format_axis(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.0}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.0}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
