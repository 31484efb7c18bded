//! Plots drawn on the server as SVG (no tile server, nothing loaded from the internet): the
//! public map of risk zones and bar charts of daily counts. Text goes through askama's escaping
//! rules by hand here: every string written into the SVG is escaped.

use std::fmt::Write;

use chainbreak_app::public::{Cell, DayCounts, MapArea, PublicMap};
use chainbreak_core::model::ZoneLevel;

use crate::i18n::Lang;

/// Escapes text for XML content and attributes.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn fill(level: ZoneLevel) -> &'static str {
    match level {
        ZoneLevel::High => "#d7191c",
        ZoneLevel::Medium => "#fdae61",
        ZoneLevel::Low => "#fff3b0",
    }
}

/// Every position of a geometry, to fit the view.
fn positions(g: &geojson::Value, out: &mut Vec<(f64, f64)>) {
    use geojson::Value as V;
    match g {
        V::Point(p) => out.push((p[0], p[1])),
        V::MultiPoint(ps) | V::LineString(ps) => out.extend(ps.iter().map(|p| (p[0], p[1]))),
        V::Polygon(rings) | V::MultiLineString(rings) => {
            out.extend(rings.iter().flatten().map(|p| (p[0], p[1])));
        }
        V::MultiPolygon(polys) => out.extend(polys.iter().flatten().flatten().map(|p| (p[0], p[1]))),
        V::GeometryCollection(gs) => gs.iter().for_each(|g| positions(&g.value, out)),
    }
}

/// A linear projection of longitude and latitude onto the view (longitudes shrunk by the
/// cosine of the middle latitude, so shapes keep their proportions over a city).
struct View {
    min: (f64, f64),
    scale: f64,
    kx: f64,
    height: f64,
}

impl View {
    fn fit(points: &[(f64, f64)], width: f64) -> Option<View> {
        let (mut lo, mut hi) = ((f64::MAX, f64::MAX), (f64::MIN, f64::MIN));
        for &(x, y) in points {
            lo = (lo.0.min(x), lo.1.min(y));
            hi = (hi.0.max(x), hi.1.max(y));
        }
        if points.is_empty() {
            return None;
        }
        let kx = ((lo.1 + hi.1) / 2.0).to_radians().cos().max(0.1);
        let span = ((hi.0 - lo.0) * kx).max(hi.1 - lo.1).max(1e-6);
        let scale = (width - 20.0) / span;
        let height = ((hi.1 - lo.1) * scale + 20.0).max(60.0);
        Some(View { min: lo, scale, kx, height })
    }

    fn xy(&self, p: &[f64]) -> (f64, f64) {
        (10.0 + (p[0] - self.min.0) * self.kx * self.scale, self.height - 10.0 - (p[1] - self.min.1) * self.scale)
    }

    /// SVG path data of a geometry's rings (points are drawn apart).
    fn path(&self, g: &geojson::Value) -> String {
        use geojson::Value as V;
        let mut d = String::new();
        let mut ring = |r: &[Vec<f64>]| {
            for (k, p) in r.iter().enumerate() {
                let (x, y) = self.xy(p);
                let _ = write!(d, "{}{x:.1},{y:.1} ", if k == 0 { "M" } else { "L" });
            }
            d.push_str("Z ");
        };
        match g {
            V::Polygon(rings) => rings.iter().for_each(|r| ring(r)),
            V::MultiPolygon(polys) => polys.iter().flatten().for_each(|r| ring(r)),
            _ => {}
        }
        d.trim_end().to_string()
    }
}

/// A zone on a map.
pub(crate) struct Shape<'a> {
    pub(crate) id: &'a str,
    pub(crate) level: ZoneLevel,
    /// Proposed, not in force: drawn dashed and lighter.
    pub(crate) proposed: bool,
    pub(crate) title: String,
    pub(crate) geometry: Option<&'a geojson::Geometry>,
}

/// The public map: the zones in force over their counties.
pub(crate) fn zone_map(map: &PublicMap, lang: Lang) -> Option<String> {
    let shapes: Vec<Shape> = map
        .zones
        .iter()
        .map(|(z, g)| Shape {
            id: &z.id,
            level: z.level,
            proposed: false,
            title: format!(
                "{} · {}",
                lang.t(&format!("level_{}", z.level.as_str())),
                z.name.as_deref().unwrap_or(&z.target_id)
            ),
            geometry: g.as_ref(),
        })
        .collect();
    zones_svg(&map.base, &shapes, lang)
}

/// Zones over their counties; `None` when nothing has a shape.
pub(crate) fn zones_svg(base: &[MapArea], shapes: &[Shape], lang: Lang) -> Option<String> {
    let mut points = Vec::new();
    for a in base {
        if let Some(g) = &a.geometry {
            positions(&g.value, &mut points);
        }
    }
    for s in shapes {
        if let Some(g) = s.geometry {
            positions(&g.value, &mut points);
        }
    }
    let width = 640.0;
    let view = View::fit(&points, width)?;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {h:.0}" class="map" role="img" aria-label="{label}">"#,
        h = view.height,
        label = esc(lang.t("map")),
    );
    for a in base {
        if let Some(g) = &a.geometry {
            let _ = write!(
                svg,
                r##"<path class="base" d="{}" fill="#f2f2f2" stroke="#888" stroke-width="1"><title>{}</title></path>"##,
                view.path(&g.value),
                esc(&a.name)
            );
        }
    }
    // Lower levels first, so that high zones are drawn on top.
    let mut order: Vec<&Shape> = shapes.iter().collect();
    order.sort_by_key(|s| (std::cmp::Reverse(s.level), !s.proposed));
    for s in order {
        let Some(g) = s.geometry else { continue };
        let level = s.level.as_str();
        let (status, dash, opacity) =
            if s.proposed { ("proposed", r#" stroke-dasharray="4 3""#, "0.35") } else { ("in-force", "", "0.75") };
        match &g.value {
            geojson::Value::Point(p) => {
                let (x, y) = view.xy(p);
                let _ = write!(
                    svg,
                    r##"<circle class="zone {level} {status}" data-zone="{}" cx="{x:.1}" cy="{y:.1}" r="6" fill="{}" fill-opacity="{opacity}" stroke="#333"{dash}><title>{}</title></circle>"##,
                    esc(s.id),
                    fill(s.level),
                    esc(&s.title)
                );
            }
            value => {
                let _ = write!(
                    svg,
                    r##"<path class="zone {level} {status}" data-zone="{}" d="{}" fill="{}" fill-opacity="{opacity}" stroke="#333" stroke-width="1"{dash}><title>{}</title></path>"##,
                    esc(s.id),
                    view.path(value),
                    fill(s.level),
                    esc(&s.title)
                );
            }
        }
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// Daily totals as bars: counts to scale, "<5" as a low grey bar, "x" as an empty slot, each
/// labelled.
pub(crate) fn daily_bars(days: &[DayCounts], lang: Lang) -> String {
    let (width, height, top) = (640.0, 180.0, 16.0);
    let max =
        days.iter().filter_map(|d| if let Cell::Count(n) = d.total { Some(n) } else { None }).max().unwrap_or(5).max(5);
    let slot = (width - 20.0) / days.len().max(1) as f64;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {h}" class="bars" role="img" aria-label="{}">"#,
        esc(lang.t("daily")),
        h = height + 24.0
    );
    for (k, d) in days.iter().enumerate() {
        let x = 10.0 + k as f64 * slot;
        let (bar, colour) = match d.total {
            Cell::Count(n) => ((n as f64 / max as f64) * (height - top), "#3b6ea5"),
            Cell::Small => ((4.0 / max as f64) * (height - top), "#aab4c0"),
            Cell::Hidden => (0.0, "none"),
        };
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bar:.1}" fill="{colour}"><title>{} {}</title></rect>"#,
            x + slot * 0.1,
            height - bar,
            slot * 0.8,
            d.date,
            esc(&d.total.text())
        );
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
            x + slot / 2.0,
            height - bar - 3.0,
            esc(&d.total.text())
        );
        if days.len() <= 31 && (k % 7 == 0 || k + 1 == days.len()) {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
                x + slot / 2.0,
                height + 16.0,
                &d.date.to_string()[5..]
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Daily counts as bars over `days`, those from `incomplete_from` on lighter; every seventh day
/// labelled.
pub(crate) fn day_bars(
    days: &[jiff::civil::Date],
    values: &[u64],
    incomplete_from: Option<jiff::civil::Date>,
    label: &str,
) -> String {
    let (width, height, top) = (640.0, 160.0, 14.0);
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let slot = (width - 20.0) / days.len().max(1) as f64;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {h}" class="curve" role="img" aria-label="{}">"#,
        esc(label),
        h = height + 22.0
    );
    for (k, (d, &n)) in days.iter().zip(values).enumerate() {
        let x = 10.0 + k as f64 * slot;
        let bar = (n as f64 / max as f64) * (height - top);
        let incomplete = incomplete_from.is_some_and(|f| *d >= f);
        let colour = if incomplete { "#b9cbe0" } else { "#3b6ea5" };
        let _ = write!(
            svg,
            r#"<rect class="day{}" x="{:.1}" y="{:.1}" width="{:.1}" height="{bar:.1}" fill="{colour}"><title>{d}: {n}</title></rect>"#,
            if incomplete { " incomplete" } else { "" },
            x + slot * 0.1,
            height - bar,
            slot * 0.8,
        );
        if k % 7 == 0 || k + 1 == days.len() {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
                x + slot / 2.0,
                height + 16.0,
                &d.to_string()[5..]
            );
        }
    }
    let _ = write!(svg, r#"<text x="12" y="11" font-size="10">{max}</text>"#);
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars in `colour`, one per (label, count), in the order given.
pub(crate) fn labelled_bars(items: &[(String, u64)], label: &str, colour: &str) -> String {
    let (width, row) = (640.0, 22.0);
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {h}" class="hbars" role="img" aria-label="{}">"#,
        esc(label),
        h = row * items.len().max(1) as f64 + 4.0
    );
    for (k, (name, n)) in items.iter().enumerate() {
        let y = 2.0 + k as f64 * row;
        let bar = (*n as f64 / max as f64) * (width - 200.0);
        let _ = write!(
            svg,
            r##"<text x="0" y="{:.1}" font-size="12">{}</text><rect x="160" y="{:.1}" width="{bar:.1}" height="{:.1}" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="12">{n}</text>"##,
            y + 14.0,
            esc(name),
            y + 3.0,
            row - 6.0,
            164.0 + bar,
            y + 14.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A facility's forecast in a line: rooms needed each day as bars (red when short) under a line
/// at the rooms there are.
pub(crate) fn forecast(days: &[chainbreak_closedloop::facility::ForecastDay]) -> String {
    let (width, height) = (140.0, 28.0);
    let max = days.iter().map(|d| d.rooms_needed.max(d.rooms)).max().unwrap_or(1).max(1) as f64;
    let slot = width / days.len().max(1) as f64;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="forecast" style="max-width:10rem">"#
    );
    for (k, d) in days.iter().enumerate() {
        let bar = d.rooms_needed as f64 / max * (height - 2.0);
        let colour = if d.short { "#b00" } else { "#3b6ea5" };
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bar:.1}" fill="{colour}"><title>{}: {} / {}</title></rect>"#,
            k as f64 * slot + 1.0,
            height - bar,
            slot - 2.0,
            d.date,
            d.rooms_needed,
            d.rooms
        );
    }
    if let Some(d) = days.first() {
        let y = height - d.rooms as f64 / max * (height - 2.0);
        let _ = write!(
            svg,
            r##"<line x1="0" x2="{width}" y1="{y:.1}" y2="{y:.1}" stroke="#333" stroke-dasharray="2 2"/>"##
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A stay on a trail: the local day, the hours it spans that day (0 to 24), and the place.
pub(crate) struct TrailStay {
    pub(crate) day: jiff::civil::Date,
    pub(crate) from_hour: f64,
    pub(crate) to_hour: f64,
    pub(crate) place: String,
    /// No check-out: the end is assumed.
    pub(crate) open: bool,
}

/// A case's trail on a timeline: one row a day, the hours across, each stay a labelled bar.
pub(crate) fn trail(stays: &[TrailStay], label: &str) -> Option<String> {
    let first = stays.iter().map(|s| s.day).min()?;
    let last = stays.iter().map(|s| s.day).max()?;
    let days: Vec<jiff::civil::Date> = first.series(jiff::Span::new().days(1)).take_while(|d| *d <= last).collect();
    let (width, row, left) = (900.0, 26.0, 80.0);
    let hour = (width - left - 10.0) / 24.0;
    let height = row * days.len() as f64 + 24.0;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="trail" role="img" aria-label="{}">"#,
        esc(label)
    );
    for h in (0..=24).step_by(3) {
        let x = left + f64::from(h) * hour;
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="0" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle">{h:02}</text>"##,
            height - 20.0,
            height - 6.0
        );
    }
    for (k, d) in days.iter().enumerate() {
        let y = k as f64 * row;
        let _ = write!(svg, r#"<text x="0" y="{:.1}" font-size="11">{d}</text>"#, y + 16.0);
        for s in stays.iter().filter(|s| s.day == *d) {
            let x = left + s.from_hour * hour;
            let w = ((s.to_hour - s.from_hour) * hour).max(2.0);
            let _ = write!(
                svg,
                r##"<rect class="stay" x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{}" stroke="#1f3b5a"><title>{}</title></rect><text x="{:.1}" y="{:.1}" font-size="9">{}</text>"##,
                y + 4.0,
                row - 8.0,
                if s.open { "#c9d6e6" } else { "#7fa3c9" },
                esc(&s.place),
                x + 2.0,
                y + 15.0,
                esc(&s.place)
            );
        }
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// A count series: observed as bars, the method's upper bound as a line, alarms in red.
pub(crate) fn series(points: &[chainbreak_app::surveillance::SeriesPoint], label: &str) -> String {
    let (width, height) = (320.0, 90.0);
    let max = points.iter().flat_map(|p| [p.observed, p.upperbound]).flatten().fold(1.0f64, f64::max);
    let slot = width / points.len().max(1) as f64;
    let y = |v: f64| height - v / max * (height - 4.0);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="series" role="img" aria-label="{}">"#,
        esc(label)
    );
    let mut line = String::new();
    for (k, p) in points.iter().enumerate() {
        let x = k as f64 * slot;
        if let Some(o) = p.observed {
            let colour = if p.alarm == Some(true) { "#b00" } else { "#7fa3c9" };
            let class = if p.alarm == Some(true) { "obs alarm" } else { "obs" };
            let _ = write!(
                svg,
                r#"<rect class="{class}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{}: {o}</title></rect>"#,
                x + 0.5,
                y(o),
                (slot - 1.0).max(0.5),
                height - y(o),
                p.period
            );
        }
        if let Some(b) = p.upperbound {
            let _ = write!(line, "{}{:.1},{:.1} ", if line.is_empty() { "M" } else { "L" }, x + slot / 2.0, y(b));
        }
    }
    if !line.is_empty() {
        let _ = write!(svg, r##"<path d="{}" fill="none" stroke="#333" stroke-width="1"/>"##, line.trim_end());
    }
    svg.push_str("</svg>");
    svg
}

/// The transmission chains as a forest, laid out deterministically: each chain a tree (depth
/// down, its leaves side by side), chains left to right by their root's report date; chains of
/// one case in a grid below; a chain of more than `collapse_over` cases drawn as one node
/// (linking to `?expand=ROOT`) unless it is `expand`. Returns the SVG and (chains, the largest,
/// single cases).
pub(crate) fn chain_forest(
    nodes: &[chainbreak_app::overview::ChainNode],
    expand: Option<&str>,
    collapse_over: usize,
    lang: Lang,
) -> (String, (usize, usize, usize)) {
    use std::collections::{BTreeMap, BTreeSet};
    let order: BTreeMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.case_id.as_str(), i)).collect();
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in nodes {
        if let Some(i) = &n.infector {
            children.entry(i.as_str()).or_default().push(n.case_id.as_str());
        }
    }
    for kids in children.values_mut() {
        kids.sort_by_key(|k| order[k]);
    }
    // Roots: cases without an infector; then, for cycles in the records, the earliest case of
    // each part never reached.
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut trees: Vec<Vec<(&str, usize)>> = Vec::new();
    fn walk<'a>(
        root: &'a str,
        children: &BTreeMap<&'a str, Vec<&'a str>>,
        seen: &mut BTreeSet<&'a str>,
    ) -> Vec<(&'a str, usize)> {
        let mut out = Vec::new();
        let mut stack = vec![(root, 0usize)];
        while let Some((c, d)) = stack.pop() {
            if !seen.insert(c) {
                continue;
            }
            out.push((c, d));
            if let Some(kids) = children.get(c) {
                for k in kids.iter().rev() {
                    stack.push((k, d + 1));
                }
            }
        }
        out
    }
    for n in nodes.iter().filter(|n| n.infector.is_none()) {
        let t = walk(&n.case_id, &children, &mut seen);
        if !t.is_empty() {
            trees.push(t);
        }
    }
    for n in nodes {
        if !seen.contains(n.case_id.as_str()) {
            let t = walk(&n.case_id, &children, &mut seen);
            trees.push(t);
        }
    }
    let class_of: BTreeMap<&str, &chainbreak_app::overview::ChainNode> =
        nodes.iter().map(|n| (n.case_id.as_str(), n)).collect();
    let (gap, level) = (16.0, 42.0);
    let chains = trees.iter().filter(|t| t.len() > 1).count();
    let largest = trees.iter().map(Vec::len).max().unwrap_or(0);
    let singles: Vec<&str> = trees.iter().filter(|t| t.len() == 1).map(|t| t[0].0).collect();
    let colour = |c: chainbreak_core::model::Classification| match c {
        chainbreak_core::model::Classification::Confirmed => "#b00",
        chainbreak_core::model::Classification::Asymptomatic => "#e8a",
        _ => "#999",
    };
    // Each chain laid out on its own (x from 0, y from 0): a collapsed chain is one node; else
    // leaves left to right in walk order and a parent above the middle of its children.
    enum Drawn<'a> {
        Collapsed(&'a str, usize),
        Tree(&'a [(&'a str, usize)], BTreeMap<&'a str, (f64, f64)>),
    }
    let mut drawn: Vec<(Drawn, f64, f64)> = Vec::new();
    for t in trees.iter().filter(|t| t.len() > 1) {
        let root = t[0].0;
        if t.len() > collapse_over && expand != Some(root) {
            drawn.push((Drawn::Collapsed(root, t.len() - 1), 60.0, 50.0));
            continue;
        }
        let mut pos: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        let mut next_leaf = 0.0;
        let mut height = 0.0f64;
        for &(c, d) in t.iter().rev() {
            let y = d as f64 * level;
            let kid_x: Vec<f64> =
                children.get(c).into_iter().flatten().filter_map(|k| pos.get(k).map(|p| p.0)).collect();
            let cx = if kid_x.is_empty() {
                let v = next_leaf;
                next_leaf += gap;
                v
            } else {
                (kid_x[0] + kid_x[kid_x.len() - 1]) / 2.0
            };
            pos.insert(c, (cx, y));
            height = height.max(y);
        }
        // Leaves were placed right to left (reverse walk): mirror them into reading order.
        let (lo, hi) = pos.values().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
        for p in pos.values_mut() {
            p.0 = hi - p.0;
        }
        drawn.push((Drawn::Tree(t, pos), hi - lo, height));
    }
    // Shelves: chains left to right in rows about as wide as the whole is tall times 1.6 (a
    // screen's shape), so that ten thousand cases fill a page instead of a line; then the
    // single cases in a grid of the same width.
    let area: f64 = drawn.iter().map(|(_, w, h)| (w + 2.0 * gap) * (h + 30.0 + gap)).sum::<f64>()
        + singles.len() as f64 * gap * gap;
    let row_width = (area * 1.6).sqrt().max(400.0);
    let mut body = String::new();
    let (mut x, mut y, mut shelf) = (10.0f64, 20.0f64, 0.0f64);
    for (d, w, h) in &drawn {
        if x > 10.0 && x + w > row_width {
            x = 10.0;
            y += shelf + 30.0 + gap;
            shelf = 0.0;
        }
        match d {
            Drawn::Collapsed(root, n) => {
                let _ = write!(
                    body,
                    r##"<a href="?expand={r}"><circle class="cluster" data-root="{r}" cx="{cx:.1}" cy="{y:.1}" r="12" fill="#1f3b5a"/><text x="{cx:.1}" y="{ty:.1}" font-size="10" text-anchor="middle">{r} (+{n})</text></a>"##,
                    r = esc(root),
                    cx = x + 20.0,
                    ty = y + 24.0,
                );
            }
            Drawn::Tree(t, pos) => {
                let at = |c: &str| pos.get(c).map(|p| (x + p.0, y + p.1));
                let depth: BTreeMap<&str, usize> = t.iter().copied().collect();
                for &(c, d) in t.iter() {
                    let (cx, cy) = at(c).expect("laid out");
                    // The tree's edges only (a cycle in the records has one edge too many).
                    if let Some(i) = class_of[c].infector.as_deref()
                        && depth.get(i).is_some_and(|di| di + 1 == d)
                        && let Some((px, py)) = at(i)
                    {
                        let _ = write!(
                            body,
                            r##"<line x1="{px:.1}" y1="{py:.1}" x2="{cx:.1}" y2="{cy:.1}" stroke="#999"/>"##
                        );
                    }
                }
                for &(c, _) in t.iter() {
                    let (cx, cy) = at(c).expect("laid out");
                    let _ = write!(
                        body,
                        r#"<circle class="case" data-case="{id}" cx="{cx:.1}" cy="{cy:.1}" r="5" fill="{}"><title>{id} · {}</title></circle>"#,
                        colour(class_of[c].classification),
                        class_of[c].reported,
                        id = esc(c),
                    );
                }
            }
        }
        x += w + gap * 2.0;
        shelf = shelf.max(*h);
    }
    let height = if drawn.is_empty() { 20.0 } else { y + shelf + 30.0 };
    let per_row = ((row_width - 10.0) / gap).floor().max(1.0) as usize;
    let top = height + 20.0;
    if !singles.is_empty() {
        let _ =
            write!(body, r#"<text x="10" y="{:.1}" font-size="11">{}</text>"#, top - 6.0, esc(lang.t("single_cases")));
    }
    for (k, c) in singles.iter().enumerate() {
        let (cx, cy) = (10.0 + (k % per_row) as f64 * gap, top + 10.0 + (k / per_row) as f64 * gap);
        let _ = write!(
            body,
            r#"<circle class="case single" data-case="{id}" cx="{cx:.1}" cy="{cy:.1}" r="4" fill="{}"><title>{id} · {}</title></circle>"#,
            colour(class_of[c].classification),
            class_of[c].reported,
            id = esc(c),
        );
    }
    let rows = singles.len().div_ceil(per_row) as f64;
    let width = row_width + 10.0;
    let total_height = top + 20.0 + rows * gap;
    let svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" id="chains-svg" viewBox="0 0 {width:.0} {total_height:.0}" class="chains" role="img" aria-label="{}">{body}</svg>"#,
        esc(lang.t("chains"))
    );
    (svg, (chains, largest, singles.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chainbreak_app::overview::ChainNode;
    use chainbreak_core::model::Classification;

    fn node(id: &str, infector: Option<&str>, d: i8) -> ChainNode {
        ChainNode {
            case_id: id.into(),
            classification: Classification::Confirmed,
            infector: infector.map(Into::into),
            reported: jiff::civil::date(2022, 3, d),
        }
    }

    /// Ten thousand cases (chains of 2 to 7 and single cases) fill a screen-shaped picture, not
    /// a line: the chains wrap into rows.
    #[test]
    fn ten_thousand_cases_are_laid_out_in_rows_of_a_screens_shape() {
        let mut nodes = Vec::new();
        let mut i = 0;
        while nodes.len() < 10_000 {
            let root = format!("R{i}");
            nodes.push(node(&root, None, 1));
            // Every third "chain" a single case; else a chain of 1 to 6 infected.
            for k in 0..(i % 3) * (1 + i % 6) / 2 {
                nodes.push(node(&format!("R{i}-{k}"), Some(&root), 2));
            }
            i += 1;
        }
        let (svg, (chains, _, singles)) = chain_forest(&nodes, None, 200, Lang::En);
        assert!(chains > 1000 && singles > 1000, "{chains} chains, {singles} single cases");
        let view = svg.split("viewBox=\"0 0 ").nth(1).unwrap().split('"').next().unwrap();
        let (w, h) = view.split_once(' ').unwrap();
        let ratio = w.parse::<f64>().unwrap() / h.parse::<f64>().unwrap();
        assert!((0.4..=3.0).contains(&ratio), "width / height = {ratio} ({view})");
        assert_eq!(svg.matches("class=\"case").count(), nodes.len());
    }

    #[test]
    fn the_forest_is_laid_out_the_same_every_time_and_survives_cycles() {
        let nodes = vec![
            node("A", None, 1),
            node("B", Some("A"), 2),
            node("C", Some("A"), 3),
            node("D", Some("B"), 4),
            node("S", None, 5),
            // A cycle in the records: X ← Y ← X.
            node("X", Some("Y"), 6),
            node("Y", Some("X"), 7),
        ];
        let (svg, (chains, largest, singles)) = chain_forest(&nodes, None, 200, Lang::En);
        assert_eq!((chains, largest, singles), (2, 4, 1));
        for id in ["A", "B", "C", "D", "S", "X", "Y"] {
            assert_eq!(svg.matches(&format!(r#"data-case="{id}""#)).count(), 1, "{id} drawn once");
        }
        assert_eq!(svg.matches("<line").count(), 4, "A-B, A-C, B-D and X-Y");
        assert_eq!(chain_forest(&nodes, None, 200, Lang::En).0, svg);
        // A chain over the limit is one node, until opened.
        let (collapsed, _) = chain_forest(&nodes, None, 3, Lang::En);
        assert!(collapsed.contains(r#"data-root="A""#) && !collapsed.contains(r#"data-case="D""#));
        let (opened, _) = chain_forest(&nodes, Some("A"), 3, Lang::En);
        assert!(opened.contains(r#"data-case="D""#));
    }
}
