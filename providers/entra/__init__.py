"""The Microsoft Entra provider: authentication, the Graph client and the directory over Graph."""
