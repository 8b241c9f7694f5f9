/* dash_page.h - the dashboard's page, assembled once from the files in web/
 * (embedded at build time by cmake/embed_web.cmake): dashboard.html with
 * dashboard.css and dashboard.js inlined where it says, and the response
 * headers that go with it, including a Content-Security-Policy that allows
 * exactly those two inline blocks (by SHA-256), connections to this server
 * only, and nothing loaded from anywhere. */
#ifndef EG_DASH_PAGE_H
#define EG_DASH_PAGE_H

#include <stddef.h>

#include "errors.h"

typedef struct eg_dash_page {
  char *html;    /* the document, NUL terminated */
  size_t len;
  char *headers; /* header lines for eg_http_respond, each ending "\r\n" */
} eg_dash_page;

/* EG_NOMEM, or EG_INVAL if the template lacks a marker (a build defect). */
eg_err eg_dash_page_build(eg_dash_page *p);
void eg_dash_page_free(eg_dash_page *p);

#endif
