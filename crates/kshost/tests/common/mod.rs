pub mod tiny;
