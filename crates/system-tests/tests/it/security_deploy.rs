//! Issue 9, finding 9 and the low items on Kubernetes and database roles: what the deployment
//! files expose, and what a service's own database role may do.
//!
//! - docker-compose publishes only the gateway beyond loopback, has no default or literal
//!   secret, gives every database role its own password, and runs Prometheus without its
//!   lifecycle API (the file is parsed, as in `deploy.rs`: no compose plugin or daemon here);
//! - the Kubernetes manifests, rendered by `kubectl kustomize` (and the test renderer,
//!   `deploy::render`), deny by default and let each pod talk only to what it needs: a small
//!   evaluator of NetworkPolicy semantics answers "may A connect to B on port P" for the
//!   connections an attacker would try; no pod mounts a service-account token;
//! - a service's runtime role, on a database migrated the way the services migrate, reads and
//!   writes its rows but cannot ALTER, DROP, TRUNCATE or CREATE.

// By what is deployed: compose, the Kubernetes network policies and pods, the database roles.
mod compose;
mod database_roles;
mod network_policies;
