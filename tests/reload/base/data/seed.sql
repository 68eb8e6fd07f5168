CREATE TABLE regions (code VARCHAR(16) PRIMARY KEY, name VARCHAR(100) NOT NULL, population INTEGER NOT NULL);
INSERT INTO regions VALUES
  ('35.03.01', 'Panggul', 76000),
  ('35.03.07', 'Kampak', 38000),
  ('35.03.11', 'Trenggalek', 71000);
