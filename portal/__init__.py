"""The subscription billing portal. The app is built by portal.app.create_app();
the billing core (portal.billing) imports without Flask."""
