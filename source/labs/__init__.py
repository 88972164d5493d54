"""One small package per lab; each page calls only its own lab package and the layers below."""
