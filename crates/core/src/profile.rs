//! Policy profiles (see profile docs).
