package bench

import (
	"image/color"
	"sort"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// series is one line of a plot.
type series struct {
	name   string
	points plotter.XYs
}

var seriesColors = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// savePlot draws lines with points into a PNG; log draws both axes on
// a log scale (for series orders of magnitude apart).
func savePlot(t testing.TB, path, title, xLabel, yLabel string, log bool, lines ...series) {
	t.Helper()
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(8)
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	if log {
		p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
		p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	}
	p.Add(plotter.NewGrid())
	for i, s := range lines {
		pts := append(plotter.XYs(nil), s.points...)
		sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			t.Fatal(err)
		}
		c := seriesColors[i%len(seriesColors)]
		l.Color, sc.Color = c, c
		p.Add(l, sc)
		p.Legend.Add(s.name, l, sc)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	// Room above the lines for the legend.
	if log {
		p.Y.Max *= 8
	} else {
		p.Y.Min = 0
		p.Y.Max *= 1.35
	}
	if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
		t.Fatal(err)
	}
	t.Logf("plot: %s", path)
}
