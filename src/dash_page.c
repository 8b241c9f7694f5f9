#include "dash_page.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eg_web.h"
#include "image.h"

#define CSS_MARK "/*EG_CSS*/"
#define JS_MARK "/*EG_JS*/"

/* 'sha256-<base64>' of an inline block, as CSP compares it (CSP 3, 8.4). */
static void csp_hash(const char *s, size_t n, char out[64]) {
  uint8_t dg[32];
  eg_sha256((const uint8_t *)s, n, dg);
  unsigned char b64[48];
  EVP_EncodeBlock(b64, dg, sizeof dg); /* 44 characters and a NUL */
  snprintf(out, 64, "'sha256-%s'", (const char *)b64);
}

eg_err eg_dash_page_build(eg_dash_page *p) {
  memset(p, 0, sizeof *p);
  const char *html = eg_web_dashboard_html, *css = eg_web_dashboard_css, *js = eg_web_dashboard_js;
  const char *cm = strstr(html, CSS_MARK), *jm = strstr(html, JS_MARK);
  if (!cm || !jm || jm < cm) return EG_INVAL;
  const size_t css_n = sizeof eg_web_dashboard_css - 1, js_n = sizeof eg_web_dashboard_js - 1;
  const size_t a = (size_t)(cm - html), b = (size_t)(jm - (cm + strlen(CSS_MARK)));
  const char *rest = jm + strlen(JS_MARK);
  p->len = a + css_n + b + js_n + strlen(rest);
  p->html = malloc(p->len + 1);
  if (!p->html) return EG_NOMEM;
  char *o = p->html;
  memcpy(o, html, a), o += a;
  memcpy(o, css, css_n), o += css_n;
  memcpy(o, cm + strlen(CSS_MARK), b), o += b;
  memcpy(o, js, js_n), o += js_n;
  strcpy(o, rest);

  char hcss[64], hjs[64];
  csp_hash(css, css_n, hcss);
  csp_hash(js, js_n, hjs);
  const char *fmt =
    "Content-Security-Policy: default-src 'none'; script-src %s; style-src %s; connect-src 'self'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
    "Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n";
  const int n = snprintf(NULL, 0, fmt, hjs, hcss);
  p->headers = n > 0 ? malloc((size_t)n + 1) : NULL;
  if (!p->headers) {
    eg_dash_page_free(p);
    return EG_NOMEM;
  }
  snprintf(p->headers, (size_t)n + 1, fmt, hjs, hcss);
  return EG_OK;
}

void eg_dash_page_free(eg_dash_page *p) {
  free(p->html);
  free(p->headers);
  p->html = p->headers = NULL;
}
