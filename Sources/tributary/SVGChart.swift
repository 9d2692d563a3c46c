import Foundation

/// A line chart written as a self-contained SVG: axes with round tick values, one polyline per
/// series, a legend. No dependencies; any browser shows it.
struct SVGChart {
    /// One line of the chart.
    struct Series {
        var label: String
        var points: [(x: Double, y: Double)]
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var logY = false
    var series: [Series] = []
    var width = 900.0
    var height = 520.0

    private static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    /// The SVG document.
    func render() -> String {
        let margin = (left: 80.0, right: 200.0, top: 50.0, bottom: 60.0)
        let plotWidth = width - margin.left - margin.right, plotHeight = height - margin.top - margin.bottom
        let all = series.flatMap(\.points).filter { !logY || $0.y > 0 }
        let xs = all.map(\.x), ys = all.map { logY ? log10($0.y) : $0.y }
        let (x0, x1) = Self.range(xs), (y0, y1) = Self.range(ys)
        func px(_ x: Double) -> Double { margin.left + (x - x0) / (x1 - x0) * plotWidth }
        func py(_ y: Double) -> Double { margin.top + plotHeight - ((logY ? log10(y) : y) - y0) / (y1 - y0) * plotHeight }

        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="13">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(Self.f(width / 2))" y="28" text-anchor="middle" font-size="16">\(Self.escape(title))</text>

            """
        // Axes and ticks.
        out += "<g stroke=\"#888\" fill=\"none\"><rect x=\"\(Self.f(margin.left))\" y=\"\(Self.f(margin.top))\" width=\"\(Self.f(plotWidth))\" height=\"\(Self.f(plotHeight))\"/></g>\n"
        for t in Self.ticks(x0, x1) {
            let x = px(t)
            out += "<line x1=\"\(Self.f(x))\" y1=\"\(Self.f(margin.top))\" x2=\"\(Self.f(x))\" y2=\"\(Self.f(margin.top + plotHeight))\" stroke=\"#eee\"/>"
            out += "<text x=\"\(Self.f(x))\" y=\"\(Self.f(margin.top + plotHeight + 18))\" text-anchor=\"middle\">\(Self.label(t))</text>\n"
        }
        for t in Self.ticks(y0, y1) {
            let y = margin.top + plotHeight - (t - y0) / (y1 - y0) * plotHeight
            out += "<line x1=\"\(Self.f(margin.left))\" y1=\"\(Self.f(y))\" x2=\"\(Self.f(margin.left + plotWidth))\" y2=\"\(Self.f(y))\" stroke=\"#eee\"/>"
            out += "<text x=\"\(Self.f(margin.left - 6))\" y=\"\(Self.f(y + 4))\" text-anchor=\"end\">\(logY ? Self.label(pow(10, t)) : Self.label(t))</text>\n"
        }
        out += "<text x=\"\(Self.f(margin.left + plotWidth / 2))\" y=\"\(Self.f(height - 15))\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        out += "<text transform=\"translate(20 \(Self.f(margin.top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">\(Self.escape(yLabel))\(logY ? " (log scale)" : "")</text>\n"
        // Lines and legend.
        for (i, s) in series.enumerated() {
            let color = Self.palette[i % Self.palette.count]
            let points = s.points.filter { !logY || $0.y > 0 }.map { "\(Self.f(px($0.x))),\(Self.f(py($0.y)))" }
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(points.joined(separator: " "))\"/>\n"
            let ly = margin.top + 10 + Double(i) * 20
            out += "<line x1=\"\(Self.f(width - margin.right + 15))\" y1=\"\(Self.f(ly))\" x2=\"\(Self.f(width - margin.right + 40))\" y2=\"\(Self.f(ly))\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            out += "<text x=\"\(Self.f(width - margin.right + 46))\" y=\"\(Self.f(ly + 4))\">\(Self.escape(s.label))</text>\n"
        }
        return out + "</svg>\n"
    }

    /// The data range, widened when it is a single value.
    static func range(_ values: [Double]) -> (Double, Double) {
        guard let lo = values.min(), let hi = values.max() else { return (0, 1) }
        if hi > lo { return (lo, hi) }
        return (lo - 0.5, hi + 0.5)
    }

    /// About five round tick values (1, 2 or 5 × 10ᵏ apart) inside `[lo, hi]`.
    static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let raw = (hi - lo) / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var t = ceil(lo / step) * step
        var result: [Double] = []
        while t <= hi + step * 1e-9, result.count < 50 {
            result.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return result
    }

    static func label(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e7 { return String(Int(v)) }
        return String(format: abs(v) >= 1e-3 && abs(v) < 1e5 ? "%.3g" : "%.2e", v)
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
