//! The report's SVG charts (plotters): bars with min-max whiskers per table, and the fan-out
//! scaling curves; and the relative link from the Markdown file to the chart directory.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use super::figures::{SERVERS, display_name, fmt_num};

pub(super) fn relative_link(md: &Path, charts: &Path) -> String {
    let base = md.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let base = std::fs::canonicalize(if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &base
    })
    .ok();
    let charts_abs = std::fs::canonicalize(charts).ok();
    match (base, charts_abs) {
        (Some(b), Some(c)) => c
            .strip_prefix(&b)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| c.display().to_string()),
        _ => charts.display().to_string(),
    }
}

pub(super) fn register_font() -> bool {
    const CANDIDATES: &[&str] = &[
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    ];
    for path in CANDIDATES {
        if let Ok(bytes) = std::fs::read(path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

const COLORS: &[RGBColor] = &[
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(214, 39, 40),
];

pub(super) fn color_of(server: &str) -> RGBColor {
    let i = SERVERS
        .iter()
        .position(|s| *s == server)
        .unwrap_or(SERVERS.len() - 1);
    COLORS[i % COLORS.len()]
}

/// Horizontal bars (median) with min-max whiskers, one per server.
pub(super) fn bar_chart(
    path: &Path,
    title: &str,
    bars: &[(String, f64, f64, f64)],
) -> anyhow::Result<()> {
    let height = 90 + 40 * bars.len() as u32;
    let root = SVGBackend::new(path, (820, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = bars
        .iter()
        .map(|b| b.3.max(b.1))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.15;
    let n = bars.len() as i32;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(140)
        .build_cartesian_2d(0.0..max, (0..n).into_segmented())?;
    let names: Vec<String> = bars
        .iter()
        .map(|b| display_name(&b.0).to_string())
        .collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_label_formatter(&|v| fmt_num(*v))
        .draw()?;
    for (i, (server, median, min, max_v)) in bars.iter().enumerate() {
        let i = i as i32;
        let color = color_of(server);
        chart.draw_series(std::iter::once(Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (*median, SegmentValue::Exact(i + 1)),
            ],
            color.mix(0.8).filled(),
        )))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![
                (*min, SegmentValue::CenterOf(i)),
                (*max_v, SegmentValue::CenterOf(i)),
            ],
            BLACK.stroke_width(2),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            fmt_num(*median),
            (max_v.max(*median) + max * 0.01, SegmentValue::CenterOf(i)),
            ("sans-serif", 13),
        )))?;
    }
    root.present()?;
    Ok(())
}

/// Deliveries/s and CPU per delivery against S, one line per server, log-scaled S.
pub(super) fn scaling_chart(
    path: &Path,
    curves: &BTreeMap<String, Vec<(f64, f64, f64)>>,
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    let s_max = curves
        .values()
        .flatten()
        .map(|p| p.0)
        .fold(1.0f64, f64::max)
        * 1.5;
    let s_min = curves
        .values()
        .flatten()
        .map(|p| p.0)
        .fold(f64::MAX, f64::min)
        .max(1.0)
        / 1.5;
    for (area, title, pick) in [
        (&left, "deliveries/s (flat out)", 1usize),
        (&right, "server CPU per delivery (ns)", 2usize),
    ] {
        let y_max = curves
            .values()
            .flatten()
            .map(|p| if pick == 1 { p.1 } else { p.2 })
            .fold(0.0f64, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(80)
            .build_cartesian_2d((s_min..s_max).log_scale(), 0.0..y_max.max(1e-9))?;
        chart
            .configure_mesh()
            .x_desc("subscribers S")
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        for (server, points) in curves {
            let mut pts: Vec<(f64, f64)> = points
                .iter()
                .map(|p| (p.0, if pick == 1 { p.1 } else { p.2 }))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let color = color_of(server);
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                .label(display_name(server).to_string())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
