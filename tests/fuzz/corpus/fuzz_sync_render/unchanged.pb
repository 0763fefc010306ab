
rack1+