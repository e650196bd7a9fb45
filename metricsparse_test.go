package main

import (
	"bytes"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// These helpers read /metrics with Prometheus's own parser. They are apart
// from metrics_test.go, which builds on Linux only, because the fleet
// tests on every platform use them too.

// parseMetrics parses the Prometheus text format with Prometheus's own
// parser, failing the test on anything it rejects.
func parseMetrics(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, body)
	}
	return fams
}

// metricValue is the value of family's series whose label (if any) has
// value, and fails the test when there is none.
func metricValue(t *testing.T, fams map[string]*dto.MetricFamily, family, label, value string) float64 {
	t.Helper()
	f := fams[family]
	if f == nil {
		t.Fatalf("no %s in the metrics", family)
	}
	for _, m := range f.GetMetric() {
		matches := label == ""
		for _, l := range m.GetLabel() {
			matches = matches || l.GetName() == label && l.GetValue() == value
		}
		if !matches {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		}
		t.Fatalf("%s has type %v, want a counter or a gauge", family, f.GetType())
	}
	t.Fatalf("no %s{%s=%q} in the metrics", family, label, value)
	return 0
}
