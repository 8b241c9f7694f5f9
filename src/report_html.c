/* report_html.c - `espgang report --html FILE`: one self-contained page.
 *
 * Nothing is loaded from anywhere: no script, no font, no image file; the
 * charts are inline SVG drawn here, and a Content-Security-Policy of
 * default-src 'none' makes the browser refuse any request the page might
 * still try. Tables come from the same builders as the text/CSV/JSON views
 * (eg_table_html); chart elements carry data-* attributes with the numbers
 * they draw, so a test can read them back.
 */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

#define CHART_W 720
#define CHART_H 220
#define PAD_L 48
#define PAD_B 40
#define PAD_T 12

static const char style[] =
  "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}"
  "h1{font-size:20px}h2{font-size:16px;margin-top:28px}"
  "table{border-collapse:collapse;font-size:12px}th,td{border:1px solid #ccc;padding:2px 6px;text-align:left}"
  "th{background:#f0f0f0}.r{text-align:right}svg{background:#fafafa;border:1px solid #ddd}"
  "svg text{font:11px sans-serif;fill:#333}.fpy{fill:#6a9fd4}.final{fill:#2e7d32}.bar{fill:#c0504d}"
  ".cum{fill:none;stroke:#333;stroke-width:1.5}.hist{fill:#6a9fd4}.axis{stroke:#999}"
  ".stages{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:8px}";

/* Y axis with gridlines at 0, 25, 50, 75, 100 % of `top`. */
static void y_axis(FILE *out, double top, const char *unit) {
  const int plot_h = CHART_H - PAD_B - PAD_T;
  for (int i = 0; i <= 4; i++) {
    const double y = PAD_T + plot_h - plot_h * i / 4.0;
    fprintf(out, "<line class=\"axis\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", PAD_L, y, CHART_W - 8, y);
    fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.0f%s</text>", PAD_L - 4, y + 4, top * i / 4.0, unit);
  }
}

/* Yield per day: two bars per day, first-pass and final. */
static eg_err chart_yield(eg_rep *rep, const eg_rep_filter *flt, FILE *out) {
  eg_rep_group *g;
  size_t n;
  if (eg_rep_groups(rep, flt, EG_REP_SEC_DAY, &g, &n) != EG_OK) return EG_NOMEM;
  const int plot_h = CHART_H - PAD_B - PAD_T, plot_w = CHART_W - PAD_L - 8;
  fprintf(out, "<svg id=\"yield-chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
               "aria-label=\"yield per day\">", CHART_W, CHART_H, CHART_W, CHART_H);
  y_axis(out, 100, "%");
  const double slot = n ? (double)plot_w / (double)n : plot_w;
  const double bw = slot * 0.35 < 40 ? slot * 0.35 : 40;
  for (size_t i = 0; i < n; i++) {
    const double fpy = eg_rep_pct(g[i].y.first_pass, g[i].y.units), fin = eg_rep_pct(g[i].y.final_pass, g[i].y.units);
    const double x = PAD_L + slot * (double)i + slot / 2;
    fprintf(out, "<g class=\"day\" data-day=\"%s\" data-units=\"%ld\" data-fpy=\"%.1f\" data-final=\"%.1f\">", g[i].key,
            g[i].y.units, isnan(fpy) ? 0 : fpy, isnan(fin) ? 0 : fin);
    const double h1 = isnan(fpy) ? 0 : plot_h * fpy / 100, h2 = isnan(fin) ? 0 : plot_h * fin / 100;
    fprintf(out, "<rect class=\"fpy\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>%s first-pass %.1f%%</title></rect>",
            x - bw, PAD_T + plot_h - h1, bw, h1, g[i].key, isnan(fpy) ? 0 : fpy);
    fprintf(out, "<rect class=\"final\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>%s final %.1f%%</title></rect>",
            x, PAD_T + plot_h - h2, bw, h2, g[i].key, isnan(fin) ? 0 : fin);
    fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s (%ld)</text></g>", x, CHART_H - PAD_B + 16,
            g[i].key, g[i].y.units);
  }
  fprintf(out, "<rect class=\"fpy\" x=\"%d\" y=\"%d\" width=\"10\" height=\"10\"/><text x=\"%d\" y=\"%d\">first-pass</text>"
               "<rect class=\"final\" x=\"%d\" y=\"%d\" width=\"10\" height=\"10\"/><text x=\"%d\" y=\"%d\">final</text>",
          PAD_L, CHART_H - 14, PAD_L + 14, CHART_H - 5, PAD_L + 90, CHART_H - 14, PAD_L + 104, CHART_H - 5);
  fputs("</svg>\n", out);
  free(g);
  return EG_OK;
}

/* Failure Pareto: bars by count, most frequent first, and the running share. */
static eg_err chart_pareto(eg_rep *rep, const eg_rep_filter *flt, FILE *out) {
  eg_rep_pareto *p;
  size_t n;
  if (eg_rep_failures(rep, flt, &p, &n) != EG_OK) return EG_NOMEM;
  if (!n) {
    fputs("<p id=\"pareto-chart\" data-failures=\"0\">No failed attempts.</p>\n", out);
    free(p);
    return EG_OK;
  }
  const int plot_h = CHART_H - PAD_B - PAD_T, plot_w = CHART_W - PAD_L - 8;
  const double top = (double)p[0].attempts;
  fprintf(out, "<svg id=\"pareto-chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
               "aria-label=\"failures by stage and error\">", CHART_W, CHART_H, CHART_W, CHART_H);
  y_axis(out, top, "");
  const double slot = (double)plot_w / (double)n, bw = slot * 0.6;
  fputs("<g>", out);
  for (size_t i = 0; i < n; i++) {
    const double x = PAD_L + slot * (double)i + (slot - bw) / 2, h = plot_h * (double)p[i].attempts / top;
    fputs("<rect class=\"bar\" data-stage=\"", out);
    eg_html_escape(out, p[i].stage ? p[i].stage : "-");
    fputs("\" data-error=\"", out);
    eg_html_escape(out, p[i].error ? p[i].error : "-");
    fputs("\" data-status=\"", out);
    eg_html_escape(out, p[i].status ? p[i].status : "-");
    fprintf(out, "\" data-count=\"%ld\" data-cum=\"%.1f\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>",
            p[i].attempts, p[i].cumulative, x, PAD_T + plot_h - h, bw, h);
    eg_html_escape(out, p[i].error ? p[i].error : "-");
    fprintf(out, ": %ld</title></rect><text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", p[i].attempts, x + bw / 2,
            CHART_H - PAD_B + 14);
    eg_html_escape(out, p[i].stage ? p[i].stage : "-");
    fputs("/", out);
    eg_html_escape(out, p[i].error ? p[i].error : "-");
    fprintf(out, "</text><text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", x + bw / 2, CHART_H - PAD_B + 28);
    eg_html_escape(out, p[i].status ? p[i].status : "");
    fputs("</text>", out);
  }
  fputs("</g><polyline class=\"cum\" points=\"", out);
  for (size_t i = 0; i < n; i++)
    fprintf(out, "%.1f,%.1f ", PAD_L + slot * ((double)i + 0.5), PAD_T + plot_h - plot_h * p[i].cumulative / 100);
  fputs("\"/></svg>\n", out);
  free(p);
  return EG_OK;
}

/* One small histogram per stage (10 bins from the fastest to the slowest). */
static eg_err chart_stages(eg_rep *rep, const eg_rep_filter *flt, FILE *out) {
  eg_rep_stage_stat *st;
  size_t n;
  if (eg_rep_stage_stats(rep, flt, &st, &n) != EG_OK) return EG_NOMEM;
  enum { W = 230, H = 130, BINS = 10 };
  fputs("<div class=\"stages\" id=\"stage-charts\">\n", out);
  for (size_t i = 0; i < n; i++) {
    const char *name = st[i].stage == EG_STAGE__COUNT ? "total" : eg_stage_name(st[i].stage);
    const int64_t lo = st[i].values[0], hi = st[i].max;
    long bins[BINS] = {0}, top = 1;
    for (size_t k = 0; k < st[i].n; k++) {
      int b = hi > lo ? (int)((double)(st[i].values[k] - lo) * BINS / (double)(hi - lo + 1)) : 0;
      if (b >= BINS) b = BINS - 1;
      if (++bins[b] > top) top = bins[b];
    }
    fprintf(out, "<svg class=\"stage\" data-stage=\"%s\" data-n=\"%zu\" data-median=\"%.1f\" data-p95=\"%lld\" "
                 "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s duration histogram\">",
            name, st[i].n, st[i].median, (long long)st[i].p95, W, H, W, H, name);
    fprintf(out, "<text x=\"6\" y=\"14\">%s: n %zu, median %.0f ms, p95 %lld ms</text>", name, st[i].n, st[i].median,
            (long long)st[i].p95);
    const double bw = (W - 12) / (double)BINS;
    for (int b = 0; b < BINS; b++) {
      const double h = (H - 44) * (double)bins[b] / (double)top;
      fprintf(out, "<rect class=\"hist\" data-count=\"%ld\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
              bins[b], 6 + bw * b, H - 24 - h, bw - 1, h);
    }
    fprintf(out, "<text x=\"6\" y=\"%d\">%lld ms</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">%lld ms</text></svg>\n",
            H - 8, (long long)lo, W - 6, H - 8, (long long)hi);
  }
  fputs("</div>\n", out);
  eg_rep_stage_stats_free(st, n);
  return EG_OK;
}

static eg_err section(eg_rep *rep, const eg_rep_filter *flt, eg_rep_section s, const char *cls, FILE *out) {
  eg_table *t = eg_rep_section_table(rep, flt, s, false);
  if (!t) return EG_NOMEM;
  const eg_err r = eg_table_html(t, out, cls, false);
  eg_rep_section_free(t, s);
  return r;
}

eg_err eg_report_html(eg_rep *rep, const eg_rep_filter *flt, FILE *out, eg_fault *f) {
  bool any = false;
  for (size_t i = 0; i < rep->log.nruns && !any; i++) any = rep->selected && rep->selected[i];
  if (!any)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1,
                        rep->log.nruns ? "no run matches the filters" : "the database holds no runs yet");
  fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
        "<title>espgang report</title><style>", out);
  fputs(style, out);
  fputs("</style></head><body>\n<h1>espgang traceability report</h1>\n<p id=\"filters\">", out);
  if (flt->station) fputs("station ", out), eg_html_escape(out, flt->station), fputs("; ", out);
  if (flt->since[0]) fprintf(out, "since %s; ", flt->since);
  if (flt->until[0]) fprintf(out, "until %s; ", flt->until);
  fputs("times are UTC. A unit is one board in one run; first-pass yield: units whose first attempt passed; final "
        "yield: units whose last attempt passed (both over units that passed, failed or were aborted).</p>\n", out);
  eg_err r = EG_OK;
  fputs("<h2>Runs</h2>\n", out);
  if (r == EG_OK) {
    eg_table *t = eg_rep_runs_table(rep, flt, false, false);
    r = t ? eg_table_html(t, out, "runs", false) : EG_NOMEM;
    eg_table_free(t);
  }
  fputs("<h2>Yield over time</h2>\n", out);
  if (r == EG_OK) r = chart_yield(rep, flt, out);
  if (r == EG_OK) r = section(rep, flt, EG_REP_SEC_DAY, "days", out);
  fputs("<h2>Failures by stage and error (Pareto)</h2>\n", out);
  if (r == EG_OK) r = chart_pareto(rep, flt, out);
  if (r == EG_OK) r = section(rep, flt, EG_REP_SEC_FAILURES, "failures", out);
  fputs("<h2>Time per stage (passed attempts)</h2>\n", out);
  if (r == EG_OK) r = chart_stages(rep, flt, out);
  if (r == EG_OK) r = section(rep, flt, EG_REP_SEC_STAGES, "stages", out);
  fputs("<h2>Units</h2>\n", out);
  if (r == EG_OK) {
    eg_table *t = eg_rep_units_table(rep, flt, false);
    r = t ? eg_table_html(t, out, "units", true) : EG_NOMEM;
    eg_rep_units_table_free(t);
  }
  fputs("</body></html>\n", out);
  if (r == EG_OK && ferror(out)) r = EG_IO;
  if (r != EG_OK)
    return eg_fault_set(f, r, EG_STAGE_NONE, -1, r == EG_NOMEM ? "out of memory" : "cannot write the HTML report");
  return EG_OK;
}
