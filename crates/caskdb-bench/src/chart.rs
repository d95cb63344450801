//! One SVG bar chart per workload: every engine relative to caskdb, grouped by measurement.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::engines::Kind;
use crate::report::{Row, relative_to_caskdb};

const COLORS: [RGBColor; 5] = [
    RGBColor(0xd6, 0x45, 0x1b), // caskdb
    RGBColor(0x3b, 0x6e, 0xa8),
    RGBColor(0x4f, 0x9d, 0x69),
    RGBColor(0x9a, 0x6f, 0xb0),
    RGBColor(0x8c, 0x8c, 0x8c),
];

fn color(kind: Kind) -> RGBColor {
    COLORS[kind as usize % COLORS.len()]
}

/// Draws `rows` of the workloads in `group` into `path`.
pub fn draw(
    path: &Path,
    title: &str,
    group: &[&str],
    rows: &[Row],
    engines: &[Kind],
) -> Result<()> {
    let cats: Vec<&str> = group
        .iter()
        .copied()
        .filter(|w| rows.iter().any(|r| r.workload == *w))
        .collect();
    if cats.is_empty() {
        return Ok(());
    }
    let mut bars = Vec::new(); // (category index, engine index, value)
    for (c, w) in cats.iter().enumerate() {
        for (e, kind) in engines.iter().enumerate() {
            if let Some(r) = rows.iter().find(|r| r.workload == *w && r.engine == *kind)
                && let Some(rel) = relative_to_caskdb(rows, r)
            {
                bars.push((c, e, rel));
            }
        }
    }
    // A log scale, so that 0.05 and 5 are both readable; room above the bars for the legend.
    let top = bars.iter().map(|b| b.2).fold(1.0f64, f64::max) * 12.0;
    let bottom = bars.iter().map(|b| b.2).fold(1.0f64, f64::min) / 2.0;
    let width = 160 + 150 * cats.len() as u32 * engines.len().max(2) as u32 / 2;
    let root = SVGBackend::new(path, (width.max(560), 380)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..cats.len() as f64, (bottom..top).log_scale())
        .map_err(|e| err(&e))?;
    let labels = cats.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(cats.len() * 2 + 1)
        .x_label_formatter(&|x| {
            // Label each group at its middle.
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 1e-6 && i < labels.len() {
                labels[i].to_string()
            } else {
                String::new()
            }
        })
        .y_desc("relative to caskdb, log scale (higher is better)")
        .draw()
        .map_err(|e| err(&e))?;

    let slot = 0.8 / engines.len() as f64;
    for (e, kind) in engines.iter().enumerate() {
        let mine: Vec<_> = bars.iter().filter(|b| b.1 == e).copied().collect();
        let c = color(*kind);
        chart
            .draw_series(mine.iter().map(|&(cat, _, v)| {
                let x0 = cat as f64 + 0.1 + e as f64 * slot;
                Rectangle::new([(x0, bottom), (x0 + slot * 0.92, v)], c.filled())
            }))
            .map_err(|e| err(&e))?
            .label(kind.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        chart
            .draw_series(mine.iter().map(|&(cat, _, v)| {
                let x = cat as f64 + 0.1 + (e as f64 + 0.1) * slot;
                Text::new(format!("{v:.2}"), (x, v * 1.25), ("sans-serif", 12))
            }))
            .map_err(|e| err(&e))?;
    }
    // The caskdb line.
    chart
        .draw_series(LineSeries::new(
            [(0.0, 1.0), (cats.len() as f64, 1.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| err(&e))?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
