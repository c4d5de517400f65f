//! SVG charts for the Markdown report: throughput against batch size, and
//! latency distributions. SVG needs no fonts or system libraries.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::{Measurement, Report};

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// A chart written next to the report: file name and caption.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File name inside the results directory.
    pub file: String,
    /// What it shows and what produced it.
    pub caption: String,
}

/// Draws every chart the data allows; returns what was drawn.
pub fn draw(report: &Report, dir: &Path) -> Result<Vec<Chart>> {
    let mut charts = Vec::new();
    if let Some(chart) = throughput_by_batch(report, dir)? {
        charts.push(chart);
    }
    if let Some(chart) = latency_distribution(report, dir)? {
        charts.push(chart);
    }
    Ok(charts)
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart: {e:?}")
}

/// Series of (batch, messages/s) for each (path, message size) of the
/// produce sweep.
fn produce_series(report: &Report) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for m in report
        .measurements
        .iter()
        .filter(|m| m.scenario == "produce" || m.scenario == "peer")
    {
        let (Some(bytes), Some(batch)) = (m.msg_bytes, m.batch) else {
            continue;
        };
        let label = format!("{} {} B", m.path, bytes);
        let point = (batch as f64, m.messages_per_s.max(1.0));
        match series.iter_mut().find(|(l, _)| *l == label) {
            Some((_, points)) => points.push(point),
            None => series.push((label, vec![point])),
        }
    }
    for (_, points) in &mut series {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    series
}

fn throughput_by_batch(report: &Report, dir: &Path) -> Result<Option<Chart>> {
    let series = produce_series(report);
    if series.is_empty() {
        return Ok(None);
    }
    let file = "throughput-by-batch.svg".to_owned();
    let path = dir.join(&file);
    let max_y = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(10.0, f64::max)
        * 2.0;
    {
        let root = SVGBackend::new(&path, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Produce messages/s by batch size ({})", report.broker),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d((1f64..1000f64).log_scale(), (1f64..max_y).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("messages per request (batch)")
            .y_desc("messages/s")
            .draw()
            .map_err(err)?;
        for (i, (label, points)) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let dashed = label.starts_with("native");
            let style = if dashed {
                color.stroke_width(1)
            } else {
                color.stroke_width(3)
            };
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))
                .map_err(err)?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(Some(Chart {
        file,
        caption: format!(
            "Produce throughput against batch size; thick lines: sluice over HTTPS, thin: native rdkafka. Broker: {}.",
            report.broker
        ),
    }))
}

/// Percentile mapped to "nines" so that the tail is readable.
fn nines(p: f64) -> f64 {
    let q = (1.0 - p / 100.0).max(1e-4);
    -q.log10()
}

fn latency_distribution(report: &Report, dir: &Path) -> Result<Option<Chart>> {
    let wanted = [
        "noop",
        "noop-authenticated",
        "produce 100B x1",
        "native produce 100B x1",
        "produce 1KiB x100",
        "native produce 1KiB x100",
        "consume limit 100",
        "half-load sluice",
        "half-load native",
    ];
    let runs: Vec<&Measurement> = wanted
        .iter()
        .filter_map(|n| report.find(n))
        .filter(|m| !m.distribution.is_empty())
        .collect();
    if runs.is_empty() {
        return Ok(None);
    }
    let file = "latency-distribution.svg".to_owned();
    let path = dir.join(&file);
    let max_ms = runs
        .iter()
        .flat_map(|m| m.distribution.iter().map(|(_, us)| *us as f64 / 1000.0))
        .fold(1.0, f64::max)
        * 1.5;
    {
        let root = SVGBackend::new(&path, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Latency distribution ({})", report.broker),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..4f64, (0.01f64..max_ms).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("percentile (0 = p0, 1 = p90, 2 = p99, 3 = p99.9, 4 = p99.99)")
            .y_desc("latency, ms")
            .draw()
            .map_err(err)?;
        for (i, m) in runs.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let points: Vec<(f64, f64)> = m
                .distribution
                .iter()
                .map(|(p, us)| (nines(*p), (*us as f64 / 1000.0).max(0.01)))
                .collect();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(err)?
                .label(format!("{} ({})", m.name, m.path))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(Some(Chart {
        file,
        caption: format!(
            "Latency by percentile (measured from the intended start in open loop). Broker: {}.",
            report.broker
        ),
    }))
}
