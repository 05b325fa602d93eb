#ifndef DEPLOXA_CFASTCGI_SHIM_H
#define DEPLOXA_CFASTCGI_SHIM_H
#include <fcgiapp.h>
#endif
