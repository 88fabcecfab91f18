//! The run as one SVG: accepted and confirmed orders per second over time (top) and the
//! end-to-end latency percentiles of the orders confirmed in each second (bottom).

use crate::timeline::Second;
use anyhow::Context;
use plotters::prelude::*;
use std::path::Path;

const SIZE: (u32, u32) = (1000, 720);

pub fn write(path: &Path, title: &str, seconds: &[Second]) -> anyhow::Result<()> {
    draw(path, title, seconds)
        .map_err(|error| anyhow::anyhow!("{error}"))
        .with_context(|| format!("writing the chart {}", path.display()))
}

fn draw(path: &Path, title: &str, seconds: &[Second]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2 - 20);
    let end = seconds.len().max(1) as f64;

    let most = seconds.iter().map(|s| s.accepted.max(s.confirmed)).max().unwrap_or(0).max(1) as f64;
    let mut rates = ChartBuilder::on(&top)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .caption("orders per second", ("sans-serif", 16))
        .build_cartesian_2d(0f64..end, 0f64..most * 1.1)?;
    rates.configure_mesh().x_desc("seconds since the first order").y_desc("orders/s").draw()?;
    let series = |pick: fn(&Second) -> f64| -> Vec<(f64, f64)> {
        seconds.iter().enumerate().map(|(i, s)| (i as f64 + 0.5, pick(s))).collect()
    };
    for (name, color, points) in [
        ("accepted/s", BLUE.to_rgba(), series(|s| s.accepted as f64)),
        ("confirmed/s", RGBColor(0, 150, 0).to_rgba(), series(|s| s.confirmed as f64)),
    ] {
        let style = ShapeStyle::from(color).stroke_width(2);
        rates
            .draw_series(LineSeries::new(points, style))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    }
    rates.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;

    let highest = seconds.iter().filter_map(|s| s.p99).fold(1.0, f64::max);
    let mut latency = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .caption("end-to-end latency of the orders confirmed in each second", ("sans-serif", 16))
        .build_cartesian_2d(0f64..end, 0f64..highest * 1.1)?;
    latency.configure_mesh().x_desc("seconds since the first order").y_desc("ms").draw()?;
    let percentile = |pick: fn(&Second) -> Option<f64>| -> Vec<(f64, f64)> {
        seconds.iter().enumerate().filter_map(|(i, s)| pick(s).map(|v| (i as f64 + 0.5, v))).collect()
    };
    for (name, color, points) in [
        ("p50", GREEN.to_rgba(), percentile(|s| s.p50)),
        ("p90", RGBColor(230, 140, 0).to_rgba(), percentile(|s| s.p90)),
        ("p99", RED.to_rgba(), percentile(|s| s.p99)),
    ] {
        let style = ShapeStyle::from(color).stroke_width(2);
        latency
            .draw_series(LineSeries::new(points, style))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    }
    latency.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]
mod tests {
    use super::*;

    #[test]
    fn the_chart_is_an_svg_with_both_panels_and_every_series() {
        let seconds: Vec<Second> = (0..5)
            .map(|i| Second {
                accepted: 100 + i,
                confirmed: 50 * i,
                p50: (i > 0).then_some(200.0 * i as f64),
                p90: (i > 0).then_some(300.0 * i as f64),
                p99: (i > 0).then_some(400.0 * i as f64),
            })
            .collect();
        let dir = std::env::temp_dir().join(format!("loadgen-chart-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("timeline.svg");

        write(&path, "test run", &seconds).unwrap();

        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        for text in
            ["orders per second", "end-to-end latency", "accepted/s", "confirmed/s", "p50", "p90", "p99"]
        {
            assert!(svg.contains(text), "the chart lacks {text}");
        }
        assert!(svg.matches("<polyline").count() >= 5, "five lines expected");
    }
}
