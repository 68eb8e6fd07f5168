CREATE TABLE districts (code TEXT NOT NULL, name TEXT NOT NULL, rate REAL);
INSERT INTO districts VALUES ('35.03.01', 'Panggul', 7.5), ('35.03.02', 'Munjungan', 6.1);
